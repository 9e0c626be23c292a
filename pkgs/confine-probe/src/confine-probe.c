/*
 * confine-probe: what a service confined by bronze's init can see and do, one observation a line, for
 * the boot test of extensions/confined to judge (the probe reports, it does not decide).
 *   confine-probe report   observations, then a line on descriptor 3 (ready) and a long sleep
 *   confine-probe hog      touches memory a MiB at a time until something stops it
 *   container-probe ...    the same, its lines named so (the copy in extensions/confined's container bundle)
 *   confine-probe late     says it started (it comes after the probe), its namespaces and what getuid
 *                          answers (its allow-list leaves getuid out), and sleeps
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB (1024 * 1024)

/* what its lines start with: the name it was started as (container-probe inside the container bundle) */
static const char *self = "confine-probe";

static void observe(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void observe(const char *what, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("%s: %s ", self, what);
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
	va_end(ap);
}

/* "ok", or the errno's name for the failures the probe expects to see */
static const char *outcome(int result)
{
	if (result >= 0)
		return "ok";
	switch (errno) {
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case EROFS: return "EROFS";
	case EAGAIN: return "EAGAIN";
	case ENOSYS: return "ENOSYS";
	default: return strerror(errno);
	}
}

static int create(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	int ok = write(fd, "probe\n", 6) == 6;
	close(fd);
	unlink(path);
	return ok ? 0 : -1;
}

static void status_fields(void)
{
	static const char *const wanted[] = { "Uid:", "Gid:", "Groups:", "CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:", "NoNewPrivs:", "Seccomp:" };
	char line[256];
	FILE *status = fopen("/proc/self/status", "re");
	while (status && fgets(line, sizeof(line), status)) {
		for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
			if (strncmp(line, wanted[i], strlen(wanted[i])) != 0)
				continue;
			line[strcspn(line, "\n")] = '\0';
			char *value = line + strlen(wanted[i]);
			value += strspn(value, " \t");
			for (char *c = value; *c; c++)
				if (*c == '\t')
					*c = ' ';
			char key[32];
			snprintf(key, sizeof(key), "%.*s", (int)strlen(wanted[i]) - 1, wanted[i]);
			observe(key, "%s", value);
		}
	}
	if (status)
		fclose(status);
}

static int count_processes(void)
{
	int count = 0;
	DIR *proc = opendir("/proc");
	for (struct dirent *e; proc && (e = readdir(proc));)
		count += strspn(e->d_name, "0123456789") == strlen(e->d_name);
	if (proc)
		closedir(proc);
	return count;
}

static void list_dir(const char *what, const char *path)
{
	char names[512] = "";
	DIR *dir = opendir(path);
	for (struct dirent *e; dir && (e = readdir(dir));)
		if (e->d_name[0] != '.')
			snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", names[0] ? "," : "", e->d_name);
	if (dir)
		closedir(dir);
	observe(what, "%s", names);
}

/* The namespaces it is in (net:[4026532008] ...), to compare with another service's. */
static void namespaces(void)
{
	static const char *const kinds[] = { "mnt", "pid", "net", "ipc", "uts" };
	char all[256] = "", path[64], target[64];
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		snprintf(path, sizeof(path), "/proc/self/ns/%s", kinds[i]);
		ssize_t n = readlink(path, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
		snprintf(all + strlen(all), sizeof(all) - strlen(all), "%s%s", all[0] ? " " : "", n > 0 ? target : outcome(-1));
	}
	observe("namespaces", "%s", all);
}

/* The network interfaces it sees (from /proc/net/dev, which is its own network namespace's). */
static void interfaces(void)
{
	char line[256], names[256] = "";
	FILE *dev = fopen("/proc/net/dev", "re");
	for (int n = 0; dev && fgets(line, sizeof(line), dev); n++) {
		char *colon = strchr(line, ':');
		if (n < 2 || !colon)
			continue;
		*colon = '\0';
		snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", names[0] ? "," : "", line + strspn(line, " "));
	}
	if (dev)
		fclose(dev);
	observe("interfaces", "%s", names);
}

static void cgroup_files(void)
{
	char line[256], path[512];
	FILE *f = fopen("/proc/self/cgroup", "re");
	if (!f || !fgets(line, sizeof(line), f)) {
		observe("cgroup", "unknown");
		return;
	}
	fclose(f);
	line[strcspn(line, "\n")] = '\0';
	char group[256];
	snprintf(group, sizeof(group), "%s", strstr(line, "::") ? strstr(line, "::") + 2 : line);
	observe("cgroup", "%s", group);
	static const char *const files[] = { "memory.max", "cpu.max", "pids.max" };
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "/sys/fs/cgroup%s/%s", group, files[i]);
		FILE *limit = fopen(path, "re");
		if (limit && fgets(line, sizeof(line), limit)) {
			line[strcspn(line, "\n")] = '\0';
			observe(files[i], "%s", line);
		} else {
			observe(files[i], "unreadable");
		}
		if (limit)
			fclose(limit);
	}
}

/* How many children it can fork (each waits) before the kernel says no. */
static void fork_until_refused(void)
{
	pid_t children[256];
	int n = 0;
	while (n < 256) {
		pid_t pid = fork();
		if (pid == 0) {
			pause();
			_exit(0);
		}
		if (pid < 0)
			break;
		children[n++] = pid;
	}
	observe("forks", "%d then %s", n, n == 256 ? "stopped" : outcome(-1));
	for (int i = 0; i < n; i++)
		kill(children[i], SIGKILL);
	while (waitpid(-1, NULL, 0) > 0)
		;
}

static void report(const char *writable)
{
	char path[512], host[64] = "";
	observe("pid", "%d", (int)getpid());
	observe("processes", "%d", count_processes());
	status_fields();
	gethostname(host, sizeof(host) - 1);
	observe("hostname", "%s", host);
	observe("write /", "%s", outcome(create("/probe")));
	observe("write /var", "%s", outcome(create("/var/probe")));
	snprintf(path, sizeof(path), "%s/probe", writable);
	observe("write writable", "%s", outcome(create(path)));
	observe("write /tmp", "%s", outcome(create("/tmp/probe")));
	int fd = open("/tmp/owned", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	observe("chown /tmp to root", "%s", outcome(chown("/tmp/owned", 0, 0)));
	observe("mknod", "%s", outcome(mknod("/tmp/null", S_IFCHR | 0600, makedev(1, 3))));
	observe("ptrace traceme", "%s", outcome((int)ptrace(PTRACE_TRACEME, 0, NULL, NULL)));
	observe("unshare uts", "%s", outcome(unshare(CLONE_NEWUTS)));
	observe("sethostname", "%s", outcome(sethostname("x", 1)));
	list_dir("dev", "/dev");
	namespaces();
	interfaces();
	cgroup_files();
	fork_until_refused();
	observe("done", "report");
	/* ready: one line on the notification descriptor */
	if (write(3, "ready\n", 6) != 6)
		observe("notify", "%s", outcome(-1));
	for (;;)
		pause();
}

static void hog(void)
{
	for (unsigned long mib = 1;; mib++) {
		char *block = malloc(MIB);
		if (!block) {
			observe("hog", "malloc refused at %lu MiB", mib);
			for (;;)
				pause();
		}
		memset(block, (int)mib, MIB);
		if (mib % 4 == 0)
			observe("hog", "%lu MiB", mib);
	}
}

int main(int argc, char **argv)
{
	if (argc > 0 && strrchr(argv[0], '/'))
		self = strrchr(argv[0], '/') + 1;
	if (argc == 3 && strcmp(argv[1], "report") == 0)
		report(argv[2]);
	else if (argc == 2 && strcmp(argv[1], "hog") == 0)
		hog();
	else if (argc == 2 && strcmp(argv[1], "late") == 0) {
		observe("late", "started pid=%d", (int)getpid());
		namespaces();
		observe("getuid", "%s", outcome((int)syscall(SYS_getuid)));
		for (;;)
			pause();
	}
	fprintf(stderr, "usage: confine-probe report WRITABLE-DIR | hog | late\n");
	return 2;
}
