/*
 * bronze init: PID 1 of a bronze image, in two stages.
 *
 * Stage 1 runs from the initramfs (/init, next to /rootfs.sqsh): it mounts the
 * kernel filesystems, attaches rootfs.sqsh to a loop device and mounts it
 * read-only as the new root; when the initramfs also holds extension images
 * (/extensions/NAME.sqsh), it mounts the base and each extension read-only on
 * /layers/base and /layers/NAME and makes the new root a read-only overlay of
 * them, the extensions in name order over the base (the last name on top). It
 * then mounts tmpfs on /run /tmp /system, mounts /var (the GPT partition named
 * "var", formatted ext4 with the image's mke2fs on first boot when it is
 * empty; tmpfs when there is none), switches root and execs /sbin/init from it.
 *
 * Stage 2 runs from the read-only root: it loads the modules the command line
 * names (bronze.modules=ITEM,ITEM: a path, or a module name resolved with its
 * dependencies through modules.dep), then those the .conf files of
 * /usr/lib/modules-load.d name, reporting each result, applies the sysctl
 * settings of the .conf files in /usr/lib/sysctl.d (after the modules: one of
 * them may be kernel.modules_disabled=1), checks what it promises (root is
 * read-only, /var is writable), counts boots in /var/lib/bronze/boot-count,
 * marks the boot good for systemd-boot's boot counting (drops the +LEFT-DONE
 * counter from the name of the UKI it came from), starts the services defined
 * in /usr/lib/bronze/services, prints one machine-readable status line, and
 * then supervises the services (restarting them as their policy says) and
 * reaps orphans forever, or powers off when the command line has
 * bronze.poweroff=1 (used by tests).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "parse.h"

/* musl ships no <linux/loop.h>; these match the kernel's UAPI. */
#define LOOP_CTL_GET_FREE 0x4C82
#define LOOP_CONFIGURE 0x4C0A
#define LO_FLAGS_READ_ONLY 1
#define LO_FLAGS_AUTOCLEAR 4
#define LO_NAME_SIZE 64
#define LO_KEY_SIZE 32

struct loop_info64 {
	uint64_t lo_device, lo_inode, lo_rdevice, lo_offset, lo_sizelimit;
	uint32_t lo_number, lo_encrypt_type, lo_encrypt_key_size, lo_flags;
	uint8_t lo_file_name[LO_NAME_SIZE];
	uint8_t lo_crypt_name[LO_NAME_SIZE];
	uint8_t lo_encrypt_key[LO_KEY_SIZE];
	uint64_t lo_init[2];
};

struct loop_config {
	uint32_t fd;
	uint32_t block_size;
	struct loop_info64 info;
	uint64_t reserved[8];
};

#define EXT4_SUPER_MAGIC 0xEF53
#define ROOTFS_IMAGE "/rootfs.sqsh"
#define EXTENSIONS_DIR "/extensions"
#define LAYERS_DIR "/layers"
#define VAR_PARTITION_NAME "var"
#define MKE2FS "/usr/sbin/mke2fs"
#define EXT4_MAGIC_OFFSET (1024 + 56)
#define BOOT_COUNT_FILE "/var/lib/bronze/boot-count"
#define NEW_ROOT "/newroot"
#define STAGE2 "/sbin/init"

static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("bronze: ", stdout);
	vfprintf(stdout, fmt, ap);
	fputc('\n', stdout);
	fflush(stdout);
	va_end(ap);
}

/* The value of KEY=VALUE on the kernel command line, or NULL. */
static const char *cmdline_value(const char *key)
{
	static char cmdline[4096], value[4096];
	int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	ssize_t n = read(fd, cmdline, sizeof(cmdline) - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	cmdline[n] = '\0';
	return cmdline_lookup(cmdline, key, value, sizeof(value));
}

static int cmdline_has(const char *key_value)
{
	char key[64];
	const char *eq = strchr(key_value, '=');
	size_t len = eq ? (size_t)(eq - key_value) : strlen(key_value);
	if (len >= sizeof(key))
		return 0;
	memcpy(key, key_value, len);
	key[len] = '\0';
	const char *value = cmdline_value(key);
	return value && eq && strcmp(value, eq + 1) == 0;
}

static void power_off(void)
{
	sync();
	reboot(RB_POWER_OFF);
}

/* PID 1 must not exit (the kernel would panic with a less useful message). */
static void __attribute__((noreturn)) fatal(const char *step)
{
	say("fatal: %s: %s", step, strerror(errno));
	if (cmdline_has("bronze.poweroff=1"))
		power_off();
	for (;;)
		pause();
}

static void make_dir(const char *path)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		fatal(path);
}

static void mount_or_die(const char *src, const char *target, const char *type,
			 unsigned long flags, const char *data)
{
	if (mount(src, target, type, flags, data) < 0) {
		static char what[256];
		snprintf(what, sizeof(what), "mount %s on %s", type ? type : src, target);
		fatal(what);
	}
}

static int has_suffix(const char *name, const char *suffix)
{
	size_t len = strlen(name), suffix_len = strlen(suffix);
	return len > suffix_len && strcmp(name + len - suffix_len, suffix) == 0;
}

/* Appends to a NUL-terminated string in a buffer of SIZE bytes; 0 (the string unchanged) when it does not fit. */
static int __attribute__((format(printf, 3, 4))) append(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size - len) {
		buf[len] = '\0';
		return 0;
	}
	return 1;
}

static void use_console(void)
{
	int fd = open("/dev/console", O_RDWR | O_NOCTTY);
	if (fd < 0)
		return;
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
}

/* Attaches the image read-only to a free loop device; returns its path. */
static const char *attach_loop(const char *image)
{
	static char dev[32];
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		fatal("open /dev/loop-control");
	int n = ioctl(ctl, LOOP_CTL_GET_FREE);
	if (n < 0)
		fatal("LOOP_CTL_GET_FREE");
	close(ctl);
	snprintf(dev, sizeof(dev), "/dev/loop%d", n);

	int img = open(image, O_RDONLY | O_CLOEXEC);
	if (img < 0)
		fatal(image);
	int loop = open(dev, O_RDONLY | O_CLOEXEC);
	if (loop < 0)
		fatal(dev);
	struct loop_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.fd = (uint32_t)img;
	cfg.info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR;
	strncpy((char *)cfg.info.lo_file_name, image, LO_NAME_SIZE - 1);
	if (ioctl(loop, LOOP_CONFIGURE, &cfg) < 0)
		fatal("LOOP_CONFIGURE");
	/* the mount holds the device; with AUTOCLEAR it detaches when unmounted */
	return dev;
}

/* The block device whose uevent has the line `property` (e.g. PARTNAME=var), from sysfs; NULL when none has. */
static const char *find_partition(const char *property)
{
	static char dev[72];
	DIR *dir = opendir("/sys/class/block");
	if (!dir)
		return NULL;
	const char *found = NULL;
	struct dirent *entry;
	while (!found && (entry = readdir(dir))) {
		char path[512], line[256], devname[64] = "";
		int match = 0;
		snprintf(path, sizeof(path), "/sys/class/block/%s/uevent", entry->d_name);
		FILE *uevent = fopen(path, "re");
		if (!uevent)
			continue;
		while (fgets(line, sizeof(line), uevent)) {
			line[strcspn(line, "\n")] = '\0';
			if (strcasecmp(line, property) == 0)
				match = 1;
			else if (strncmp(line, "DEVNAME=", 8) == 0)
				snprintf(devname, sizeof(devname), "%.63s", line + 8);
		}
		fclose(uevent);
		if (match && devname[0]) {
			snprintf(dev, sizeof(dev), "/dev/%s", devname);
			found = dev;
		}
	}
	closedir(dir);
	return found;
}

enum var_content { VAR_EXT4, VAR_EMPTY, VAR_OTHER };

/* ext4 (superblock magic), empty (its first 64 KiB all zero) or something else, never to be formatted over. */
static enum var_content var_content(const char *dev)
{
	static unsigned char head[65536];
	int fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fatal(dev);
	ssize_t n = pread(fd, head, sizeof(head), 0);
	close(fd);
	if (n != (ssize_t)sizeof(head))
		fatal("read the var partition");
	if (head[EXT4_MAGIC_OFFSET] == 0x53 && head[EXT4_MAGIC_OFFSET + 1] == 0xEF)
		return VAR_EXT4;
	for (size_t i = 0; i < sizeof(head); i++)
		if (head[i])
			return VAR_OTHER;
	return VAR_EMPTY;
}

/* Runs the image's mke2fs (static, from the new root) on the partition. */
static void format_var(const char *dev)
{
	if (access(NEW_ROOT MKE2FS, X_OK) < 0)
		fatal("the var partition is empty and this image has no " MKE2FS " to format it (add the e2fsprogs package)");
	pid_t pid = fork();
	if (pid < 0)
		fatal("fork");
	if (pid == 0) {
		char *const argv[] = { "mke2fs", "-q", "-t", "ext4", "-L", VAR_PARTITION_NAME,
				       "-E", "root_owner=0:0", (char *)dev, NULL };
		execv(NEW_ROOT MKE2FS, argv);
		_exit(127);
	}
	int status;
	if (waitpid(pid, &status, 0) < 0)
		fatal("wait for mke2fs");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		errno = EIO;
		fatal("mke2fs on the var partition");
	}
}

/* /var: the data partition when the disk has one (formatted on first boot), else a tmpfs. */
static void mount_var(void)
{
	const char *dev = find_partition("PARTNAME=" VAR_PARTITION_NAME);
	if (!dev) {
		mount_or_die("tmpfs", NEW_ROOT "/var", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
		return;
	}
	switch (var_content(dev)) {
	case VAR_OTHER:
		errno = EEXIST;
		fatal("the var partition holds data that is not ext4; not formatting it");
	case VAR_EMPTY:
		format_var(dev);
		say("var %s formatted ext4 (first boot)", dev);
		break;
	case VAR_EXT4:
		break;
	}
	mount_or_die(dev, NEW_ROOT "/var", "ext4", MS_NOSUID | MS_NODEV, NULL);
	say("var %s mounted ext4", dev);
}

static int sqsh_file(const struct dirent *entry)
{
	return has_suffix(entry->d_name, ".sqsh");
}

/* An extension image's file name: [A-Za-z0-9._-] ending .sqsh, whose layer directory is new under LAYERS_DIR. */
static int valid_extension_name(const char *file)
{
	size_t len = strlen(file);
	if (!has_suffix(file, ".sqsh"))
		return 0;
	if (strspn(file, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != len)
		return 0;
	size_t stem = len - 5;
	return !(stem == 1 && file[0] == '.') && !(stem == 2 && strncmp(file, "..", 2) == 0) &&
	       !(stem == 4 && strncmp(file, "base", 4) == 0);
}

/* The overlay's lowerdir option: the extensions' layers, the last name first (overlayfs lists the top first), then the base. */
static int overlay_lowerdirs(char *out, size_t size, struct dirent *const *files, int count)
{
	out[0] = '\0';
	if (!append(out, size, "lowerdir="))
		return 0;
	for (int i = count - 1; i >= 0; i--)
		if (!append(out, size, LAYERS_DIR "/%.*s:", (int)strlen(files[i]->d_name) - 5, files[i]->d_name))
			return 0;
	return append(out, size, LAYERS_DIR "/base");
}

/* Mounts a SquashFS image read-only on LAYERS_DIR/NAME through a loop device of its own. */
static void mount_layer(const char *image, const char *name, int name_len)
{
	char dir[320];
	snprintf(dir, sizeof(dir), LAYERS_DIR "/%.*s", name_len, name);
	make_dir(dir);
	mount_or_die(attach_loop(image), dir, "squashfs", MS_RDONLY | MS_NODEV, NULL);
}

/* The new root: the base image, or a read-only overlay of it and of the extension images when the initramfs has some. */
static void mount_root(void)
{
	make_dir(NEW_ROOT);
	struct dirent **files;
	int count = scandir(EXTENSIONS_DIR, &files, sqsh_file, alphasort);
	if (count < 0 && errno != ENOENT)
		fatal("scan " EXTENSIONS_DIR);
	if (count <= 0) {
		if (count == 0)
			free(files);
		mount_or_die(attach_loop(ROOTFS_IMAGE), NEW_ROOT, "squashfs", MS_RDONLY | MS_NODEV, NULL);
		return;
	}
	for (int i = 0; i < count; i++) {
		if (!valid_extension_name(files[i]->d_name)) {
			static char what[320];
			snprintf(what, sizeof(what), "extension image name %s (A-Z a-z 0-9 . _ - only, not base.sqsh)",
				 files[i]->d_name);
			errno = EINVAL;
			fatal(what);
		}
	}
	static char options[4096];
	if (!overlay_lowerdirs(options, sizeof(options), files, count)) {
		errno = E2BIG;
		fatal("overlay lowerdir option (too many or too long extension names)");
	}
	make_dir(LAYERS_DIR);
	mount_layer(ROOTFS_IMAGE, "base", 4);
	for (int i = 0; i < count; i++) {
		char image[320];
		const char *file = files[i]->d_name;
		int stem = (int)strlen(file) - 5;
		snprintf(image, sizeof(image), EXTENSIONS_DIR "/%s", file);
		mount_layer(image, file, stem);
		say("extension layer %.*s mounted", stem, file);
	}
	/* no upperdir: the overlay is read-only like its layers */
	mount_or_die("overlay", NEW_ROOT, "overlay", MS_RDONLY | MS_NODEV, options);
	say("root is an overlay of the base and %d extension layer(s)", count);
	for (int i = 0; i < count; i++)
		free(files[i]);
	free(files);
}

static void __attribute__((noreturn)) stage1(void)
{
	make_dir("/dev");
	make_dir("/proc");
	make_dir("/sys");
	mount_or_die("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	use_console();
	mount_or_die("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_or_die("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);

	mount_root();

	static const char *const tmpfs_dirs[] = { "run", "tmp", "system" };
	for (size_t i = 0; i < sizeof(tmpfs_dirs) / sizeof(tmpfs_dirs[0]); i++) {
		char target[64];
		snprintf(target, sizeof(target), NEW_ROOT "/%s", tmpfs_dirs[i]);
		const char *mode = strcmp(tmpfs_dirs[i], "tmp") == 0 ? "mode=1777" : "mode=0755";
		mount_or_die("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, mode);
	}
	mount_var();
	mount_or_die("/dev", NEW_ROOT "/dev", NULL, MS_MOVE, NULL);
	mount_or_die("/proc", NEW_ROOT "/proc", NULL, MS_MOVE, NULL);
	mount_or_die("/sys", NEW_ROOT "/sys", NULL, MS_MOVE, NULL);

	/* the initramfs is the rootfs and cannot be pivoted away: move over it */
	if (chdir(NEW_ROOT) < 0)
		fatal("chdir " NEW_ROOT);
	mount_or_die(".", "/", NULL, MS_MOVE, NULL);
	if (chroot(".") < 0)
		fatal("chroot");
	if (chdir("/") < 0)
		fatal("chdir /");

	char *const argv[] = { STAGE2, NULL };
	execv(STAGE2, argv);
	fatal("exec " STAGE2);
}

static int root_is_read_only(void)
{
	struct statvfs st;
	if (statvfs("/", &st) < 0)
		return 0;
	int fd = open("/.bronze-write-probe", O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd >= 0) {
		close(fd);
		unlink("/.bronze-write-probe");
		return 0;
	}
	return (st.f_flag & ST_RDONLY) && errno == EROFS;
}

static int var_is_writable(void)
{
	static const char probe[] = "/var/.bronze-write-probe";
	static const char data[] = "bronze";
	char back[sizeof(data)];
	int fd = open(probe, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return 0;
	int ok = write(fd, data, sizeof(data)) == (ssize_t)sizeof(data) &&
		 pread(fd, back, sizeof(back), 0) == (ssize_t)sizeof(back) &&
		 memcmp(back, data, sizeof(data)) == 0;
	close(fd);
	unlink(probe);
	return ok;
}

static int conf_file(const struct dirent *entry)
{
	return has_suffix(entry->d_name, ".conf");
}

/* Loads one module by path and reports the kernel's answer. */
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
static void load_modules(const char *list)
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

#define SYSCTL_DIR "/usr/lib/sysctl.d"

struct sysctl_tally {
	int applied, absent, failed;
};

/* Writes one "key = value" setting to /proc/sys; a key written "-key" may be absent from this kernel. */
static void apply_sysctl_line(char *line, struct sysctl_tally *tally)
{
	struct sysctl_setting setting;
	if (!parse_sysctl_line(line, &setting))
		return;
	const char *key = setting.key, *value = setting.value;
	int fd = open(setting.path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		if (setting.optional) {
			tally->absent++;
		} else {
			say("sysctl %s not in this kernel", key);
			tally->failed++;
		}
		return;
	}
	if (fd < 0 || write(fd, value, strlen(value)) < 0) {
		say("sysctl %s=%s failed: %s", key, value, strerror(errno));
		tally->failed++;
	} else {
		tally->applied++;
	}
	if (fd >= 0)
		close(fd);
}

/* Applies every *.conf of SYSCTL_DIR in name order, as systemd-sysctl would, and reports the tally. */
static void apply_sysctl(void)
{
	struct dirent **files;
	int count = scandir(SYSCTL_DIR, &files, conf_file, alphasort);
	if (count < 0)
		return;
	struct sysctl_tally tally = { 0, 0, 0 };
	for (int i = 0; i < count; i++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", SYSCTL_DIR, files[i]->d_name);
		FILE *conf = fopen(path, "re");
		if (conf) {
			char line[512];
			while (fgets(line, sizeof(line), conf))
				apply_sysctl_line(line, &tally);
			fclose(conf);
		} else {
			say("sysctl %s unreadable: %s", path, strerror(errno));
			tally.failed++;
		}
		free(files[i]);
	}
	free(files);
	say("sysctl applied=%d absent=%d failed=%d", tally.applied, tally.absent, tally.failed);
}

#define EFIVARS "/sys/firmware/efi/efivars"
#define LOADER_GUID "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"
#define ESP_MOUNT "/run/bronze/esp"
#define ESP_PARTITION_NAME "ESP"

/* An EFI variable of systemd-boot's holding a UTF-16 string, as ASCII (what it holds here); 0 when absent. */
static int read_loader_string(const char *name, char *out, size_t size)
{
	char path[256];
	unsigned char raw[1024];
	snprintf(path, sizeof(path), EFIVARS "/%s-" LOADER_GUID, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, raw, sizeof(raw));
	close(fd);
	size_t len = 0;
	/* 4 bytes of attributes, then UTF-16LE up to a NUL */
	for (ssize_t i = 4; i + 1 < n && len + 1 < size; i += 2) {
		if (raw[i] == 0 && raw[i + 1] == 0)
			break;
		out[len++] = raw[i + 1] ? '?' : (char)raw[i];
	}
	out[len] = '\0';
	return len > 0;
}

/*
 * Boot counting (systemd-boot's +LEFT-DONE file names): the UKI this boot came from was
 * renamed by the boot loader to count the try; once this boot is good, drop the counter from
 * its name so that it stays the default, as systemd-bless-boot does.
 */
static void bless_boot(void)
{
	char counted[256];
	if (access("/sys/firmware/efi", F_OK) < 0)
		return;
	if (mount("efivarfs", EFIVARS, "efivarfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 && errno != EBUSY) {
		say("boot counting: cannot mount efivarfs: %s", strerror(errno));
		return;
	}
	if (!read_loader_string("LoaderBootCountPath", counted, sizeof(counted)))
		return; /* the entry has no counter: nothing to bless */
	for (char *c = counted; *c; c++)
		if (*c == '\\')
			*c = '/';
	/* the kernel's uevents name partitions but carry no partition UUID: find the ESP by its GPT name */
	const char *esp = find_partition("PARTNAME=" ESP_PARTITION_NAME);
	/* .../NAME+LEFT[-DONE].efi -> .../NAME.efi */
	char blessed[256];
	char *plus = strrchr(counted, '+');
	char *slash = strrchr(counted, '/');
	if (!esp || !plus || (slash && plus < slash)) {
		say("boot counting: cannot bless %s (partition %s)", counted, esp ? esp : "not found");
		return;
	}
	snprintf(blessed, sizeof(blessed), "%.*s.efi", (int)(plus - counted), counted);
	if (mkdir("/run/bronze", 0700) < 0 && errno != EEXIST)
		return;
	if (mkdir(ESP_MOUNT, 0700) < 0 && errno != EEXIST)
		return;
	if (mount(esp, ESP_MOUNT, "vfat", MS_NOSUID | MS_NODEV | MS_NOEXEC, "umask=0077") < 0) {
		say("boot counting: cannot mount the ESP %s: %s", esp, strerror(errno));
		return;
	}
	char from[320], to[320];
	snprintf(from, sizeof(from), ESP_MOUNT "%s", counted);
	snprintf(to, sizeof(to), ESP_MOUNT "%s", blessed);
	if (rename(from, to) == 0)
		say("boot counting: %s is good, now %s", counted, blessed);
	else
		say("boot counting: rename %s failed: %s", counted, strerror(errno));
	/* unmounting writes the FAT out: the rename survives a power cut from here on */
	if (umount(ESP_MOUNT) < 0)
		say("boot counting: unmount the ESP: %s", strerror(errno));
	sync();
}

/* VERSION_ID of the running image, for the ready line. */
static const char *image_version(void)
{
	static char version[64] = "unknown";
	FILE *file = fopen("/usr/lib/os-release", "re");
	if (!file)
		file = fopen("/etc/os-release", "re");
	if (!file)
		return version;
	char line[256];
	while (fgets(line, sizeof(line), file)) {
		if (strncmp(line, "VERSION_ID=", 11) == 0) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(version, sizeof(version), "%.63s", line + 11);
		}
	}
	fclose(file);
	return version;
}

/* Counts this boot in /var (kept across boots when /var is a disk partition); 0 when it cannot. */
static unsigned long count_boot(void)
{
	unsigned long count = 0;
	FILE *file = fopen(BOOT_COUNT_FILE, "re");
	if (file) {
		if (fscanf(file, "%lu", &count) != 1)
			count = 0;
		fclose(file);
	}
	count++;
	if (mkdir("/var/lib", 0755) < 0 && errno != EEXIST)
		return 0;
	if (mkdir("/var/lib/bronze", 0755) < 0 && errno != EEXIST)
		return 0;
	file = fopen(BOOT_COUNT_FILE ".new", "we");
	if (!file)
		return 0;
	int ok = fprintf(file, "%lu\n", count) > 0 && fflush(file) == 0 && fsync(fileno(file)) == 0;
	ok = fclose(file) == 0 && ok;
	if (!ok || rename(BOOT_COUNT_FILE ".new", BOOT_COUNT_FILE) < 0)
		return 0;
	/* the rename is durable only once its directory is synced: a machine may be cut off any time */
	int dir = open("/var/lib/bronze", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return 0;
	ok = fsync(dir) == 0;
	close(dir);
	return ok ? count : 0;
}

#define SERVICE_RUNNING_MS 2000
#define SERVICE_STABLE_MS 10000
#define SERVICE_MAX_BACKOFF_S 32


static struct service services[MAX_SERVICES];
static int service_count;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}



static int service_file(const struct dirent *entry)
{
	return has_suffix(entry->d_name, SERVICE_SUFFIX);
}

/* Reads the services of SERVICES_DIR in name order; an invalid file is reported and skipped. */
static void read_services(void)
{
	struct dirent **files;
	int count = scandir(SERVICES_DIR, &files, service_file, alphasort);
	if (count < 0)
		return;
	for (int i = 0; i < count; i++) {
		const char *file = files[i]->d_name;
		if (service_count == MAX_SERVICES) {
			say("service %s invalid: more than %d services", file, MAX_SERVICES);
			free(files[i]);
			continue;
		}
		struct service *svc = &services[service_count];
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", SERVICES_DIR, file);
		const char *reason;
		FILE *def = fopen(path, "re");
		if (def) {
			reason = parse_service(def, svc);
			fclose(def);
		} else {
			reason = strerror(errno);
		}
		for (int j = 0; !reason && j < service_count; j++)
			if (strcmp(services[j].name, svc->name) == 0)
				reason = "another service has this name";
		if (reason)
			say("service %s invalid: %s", file, reason);
		else
			service_count++;
		free(files[i]);
	}
	free(files);
}

/* The process ended (or never started): restart it after its backoff, or leave it stopped, as its policy says. */
static void service_ended(struct service *svc, int failed)
{
	int64_t now = now_ms();
	int64_t lived = now - svc->started_ms;
	svc->pid = 0;
	if (svc->restart == RESTART_NEVER || (svc->restart == RESTART_ON_FAILURE && !failed)) {
		say("service %s stopped", svc->name);
		return;
	}
	/* a service that keeps failing fast is restarted ever less often; one that ran a while, at once */
	if (lived >= SERVICE_STABLE_MS)
		svc->backoff_s = 1;
	unsigned delay = svc->backoff_s;
	if (lived < SERVICE_STABLE_MS && svc->backoff_s < SERVICE_MAX_BACKOFF_S)
		svc->backoff_s *= 2;
	svc->restart_pending = 1;
	svc->restart_at_ms = now + (int64_t)delay * 1000;
	say("service %s restarting in %u s", svc->name, delay);
}

/* Forks and execs a service in a session of its own, stdin from /dev/null, stdout and stderr on the console. */
static int start_service(struct service *svc)
{
	char *argv[MAX_SERVICE_ARGS + 2];
	char *arg = svc->args;
	argv[0] = svc->command;
	for (int i = 0; i < svc->argc; i++) {
		argv[i + 1] = arg;
		arg += strlen(arg) + 1;
	}
	argv[svc->argc + 1] = NULL;
	svc->restart_pending = 0;
	svc->announced = 0;
	svc->started_ms = now_ms();
	pid_t pid = fork();
	if (pid < 0) {
		say("service %s cannot fork: %s", svc->name, strerror(errno));
		service_ended(svc, 1);
		return 0;
	}
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setsid();
		int null = open("/dev/null", O_RDONLY);
		if (null != 0) {
			if (null < 0 || dup2(null, 0) < 0)
				close(0);
			if (null > 0)
				close(null);
		}
		if (chdir("/") == 0)
			execv(svc->command, argv);
		say("service %s cannot exec %s: %s", svc->name, svc->command, strerror(errno));
		_exit(127);
	}
	svc->pid = pid;
	say("service %s started pid=%d", svc->name, (int)pid);
	return 1;
}

/* Starts every service; returns how many started. */
static int start_services(void)
{
	int started = 0;
	read_services();
	for (int i = 0; i < service_count; i++)
		started += start_service(&services[i]);
	return started;
}

/* Reaps every ended child: services (reported, restarted as their policy says) and orphans. */
static void reap(void)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int i = 0; i < service_count; i++) {
			struct service *svc = &services[i];
			if (svc->pid != pid)
				continue;
			if (WIFEXITED(status))
				say("service %s exited status=%d", svc->name, WEXITSTATUS(status));
			else
				say("service %s killed by signal %d", svc->name, WTERMSIG(status));
			service_ended(svc, !WIFEXITED(status) || WEXITSTATUS(status) != 0);
			break;
		}
	}
}

/* PID 1's last duty, forever: reap, restart the services that are due, and say which have come up. */
static void __attribute__((noreturn)) supervise(void)
{
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	/* blocked, SIGCHLD stays pending for PID 1 (unblocked, PID 1 ignores it): it ends the wait below */
	sigprocmask(SIG_BLOCK, &chld, NULL);
	for (;;) {
		reap();
		int64_t now = now_ms(), wait_ms = 1000;
		for (int i = 0; i < service_count; i++) {
			struct service *svc = &services[i];
			if (svc->restart_pending && now >= svc->restart_at_ms)
				start_service(svc);
			if (svc->pid && !svc->announced && now - svc->started_ms >= SERVICE_RUNNING_MS) {
				svc->announced = 1;
				say("service %s running pid=%d", svc->name, (int)svc->pid);
			}
			int64_t due = svc->restart_pending ? svc->restart_at_ms
				      : svc->pid && !svc->announced ? svc->started_ms + SERVICE_RUNNING_MS : -1;
			if (due >= 0 && due - now < wait_ms)
				wait_ms = due > now ? due - now : 0;
		}
		struct timespec timeout = { .tv_sec = (time_t)(wait_ms / 1000), .tv_nsec = (long)(wait_ms % 1000) * 1000000 };
		sigtimedwait(&chld, NULL, &timeout);
	}
}

static void __attribute__((noreturn)) stage2(void)
{
	load_modules(cmdline_value("bronze.modules"));
	apply_sysctl();
	struct statfs var_fs;
	const char *var_type = statfs("/var", &var_fs) == 0 && var_fs.f_type == EXT4_SUPER_MAGIC ? "ext4" : "tmpfs";
	int root_ro = root_is_read_only();
	int var_rw = var_is_writable();
	unsigned long boots = var_rw ? count_boot() : 0UL;
	/* what this boot promises holds: it is a good boot */
	if (root_ro && var_rw)
		bless_boot();
	int started = start_services();
	printf(READY_LINE " root=%s var=%s varfs=%s boots=%lu version=%s services=%d\n", root_ro ? "ro" : "rw",
	    var_rw ? "rw" : "ro", var_type, boots, image_version(), started);
	fflush(stdout);
	if (cmdline_has("bronze.poweroff=1")) {
		say("powering off");
		power_off();
		fatal("reboot(RB_POWER_OFF)");
	}
	supervise();
}

int main(void)
{
	if (getpid() != 1) {
		fprintf(stderr, "bronze init: must run as PID 1 (the kernel starts it)\n");
		return 2;
	}
	if (access(ROOTFS_IMAGE, F_OK) == 0)
		stage1();
	stage2();
}
