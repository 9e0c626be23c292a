/* init's small helpers: the console, the kernel command line, mounts, partitions by name, strings. */
#define _GNU_SOURCE
#include "init.h"

void say(const char *fmt, ...)
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
const char *cmdline_value(const char *key)
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

int cmdline_has(const char *key_value)
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

void power_off(void)
{
	sync();
	reboot(RB_POWER_OFF);
}

/* PID 1 must not exit (the kernel would panic with a less useful message). */
void __attribute__((noreturn)) fatal(const char *step)
{
	say("fatal: %s: %s", step, strerror(errno));
	if (cmdline_has("bronze.poweroff=1"))
		power_off();
	for (;;)
		pause();
}

void make_dir(const char *path)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		fatal(path);
}

void mount_or_die(const char *src, const char *target, const char *type,
			 unsigned long flags, const char *data)
{
	if (mount(src, target, type, flags, data) < 0) {
		static char what[256];
		snprintf(what, sizeof(what), "mount %s on %s", type ? type : src, target);
		fatal(what);
	}
}

int has_suffix(const char *name, const char *suffix)
{
	size_t len = strlen(name), suffix_len = strlen(suffix);
	return len > suffix_len && strcmp(name + len - suffix_len, suffix) == 0;
}

/* Appends to a NUL-terminated string in a buffer of SIZE bytes; 0 (the string unchanged) when it does not fit. */
int __attribute__((format(printf, 3, 4))) append(char *buf, size_t size, const char *fmt, ...)
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

const char *find_partition(const char *property)
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

int conf_file(const struct dirent *entry)
{
	return has_suffix(entry->d_name, ".conf");
}

/* Loads one module by path and reports the kernel's answer. */
