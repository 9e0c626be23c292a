/* Stage 2's kernel modules: those the command line names (paths, or names through modules.dep), then modules-load.d. */
#define _GNU_SOURCE
#include "init.h"

static void load_module_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		say("module %s missing: %s", path, strerror(errno));
		return;
	}
	if (syscall(SYS_finit_module, fd, "", 0) == 0)
		say("module %s loaded", path);
	else
		say("module %s refused: %s", path, strerror(errno));
	close(fd);
}

#define MODULES_DIR "/usr/lib/modules"
#define MODULES_LOAD_DIR "/usr/lib/modules-load.d"
#define MAX_MODULE_FILES 128

/* The module files tried by name this boot and the answer (0: loaded), so that each is tried once. */
static struct module_file {
	char path[320];
	int err, missing;
} module_files[MAX_MODULE_FILES];
static int module_file_count;




/* Loads a module file once per boot; 0 when it is loaded (now, before, or already by someone else), else the errno. */
static int insert_module_file(const char *path, int *fresh, int *missing)
{
	for (int i = 0; i < module_file_count; i++) {
		if (strcmp(module_files[i].path, path) == 0) {
			*fresh = 0;
			*missing = module_files[i].missing;
			return module_files[i].err;
		}
	}
	*fresh = 1;
	*missing = 0;
	int err = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		*missing = 1;
	} else {
		if (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST)
			err = errno;
		close(fd);
	}
	if (module_file_count < MAX_MODULE_FILES && strlen(path) < sizeof(module_files[0].path)) {
		struct module_file *tried = &module_files[module_file_count++];
		strcpy(tried->path, path);
		tried->err = err;
		tried->missing = *missing;
	}
	return err;
}

static void report_module(const char *name, int name_len, const char *path, int err, int missing)
{
	if (err == 0)
		say("module %.*s loaded from %s", name_len, name, path);
	else if (missing)
		say("module %.*s missing: %s", name_len, name, strerror(err));
	else
		say("module %.*s refused: %s", name_len, name, strerror(err));
}

/*
 * Loads a file of modules.dep (relative to DIR) once per boot. A dependency (ASKED NULL) is reported
 * under its file's module name when tried now; the module asked for, under the name asked, always.
 */
static int load_module_file(const char *dir, const char *file, const char *asked)
{
	char path[320];
	int n = file[0] == '/' ? snprintf(path, sizeof(path), "%s", file) : snprintf(path, sizeof(path), "%s/%s", dir, file);
	int len, fresh = 1, missing = 1, err = ENAMETOOLONG;
	const char *name = module_name_of(file, &len);
	if (n > 0 && (size_t)n < sizeof(path))
		err = insert_module_file(path, &fresh, &missing);
	if (asked)
		report_module(asked, (int)strlen(asked), path, err, missing);
	else if (fresh)
		report_module(name, len, path, err, missing);
	return err;
}

/* Loads a module by name as modprobe would: its dependencies (modules.dep lists the one to load first last), then itself. */
static void load_module_name(const char *name, const char *dir)
{
	char path[320];
	snprintf(path, sizeof(path), "%s/modules.dep", dir);
	FILE *dep = fopen(path, "re");
	char *line = NULL, *deps = NULL, *file = NULL;
	size_t cap = 0;
	if (dep) {
		file = find_in_modules_dep(dep, name, &line, &cap, &deps);
		fclose(dep);
	}
	if (!file) {
		say("module %s not in modules.dep", name);
		free(line);
		return;
	}
	int err = 0;
	/* a dependency that fails leaves the module unloadable: stop there, as modprobe does */
	for (char *end = deps + strlen(deps); err == 0;) {
		while (end > deps && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (end == deps)
			break;
		char *start = end;
		while (start > deps && start[-1] != ' ' && start[-1] != '\t')
			start--;
		*end = '\0';
		err = load_module_file(dir, start, NULL);
		end = start;
	}
	if (err == 0)
		load_module_file(dir, file, name);
	else
		say("module %s refused: %s", name, strerror(err));
	free(line);
}


/* Loads the modules named in the .conf files of MODULES_LOAD_DIR, the files in name order, as systemd-modules-load does. */
static void load_modules_load_d(const char *dir)
{
	struct dirent **files;
	int count = scandir(MODULES_LOAD_DIR, &files, conf_file, alphasort);
	if (count < 0)
		return;
	for (int i = 0; i < count; i++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", MODULES_LOAD_DIR, files[i]->d_name);
		FILE *conf = fopen(path, "re");
		if (conf) {
			char line[256];
			while (fgets(line, sizeof(line), conf)) {
				if (!strchr(line, '\n') && !feof(conf)) {
					/* longer than any module name: skip the rest of it */
					int c;
					while ((c = fgetc(conf)) != EOF && c != '\n')
						;
					continue;
				}
				char *name = module_list_line(line);
				if (name)
					load_module_name(name, dir);
			}
			fclose(conf);
		} else {
			say("modules-load.d %s unreadable: %s", path, strerror(errno));
		}
		free(files[i]);
	}
	free(files);
}

/*
 * Loads each module of a comma-separated list (a path, or a name to resolve through modules.dep),
 * then those of modules-load.d, and reports the kernel's answers.
 */
void load_modules(const char *list)
{
	struct utsname uts;
	char dir[128];
	snprintf(dir, sizeof(dir), MODULES_DIR "/%s", uname(&uts) == 0 ? uts.release : "unknown");
	if (list) {
		char items[1024], *save;
		snprintf(items, sizeof(items), "%s", list);
		for (char *item = strtok_r(items, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
			if (strchr(item, '/'))
				load_module_path(item);
			else
				load_module_name(item, dir);
		}
	}
	load_modules_load_d(dir);
}
