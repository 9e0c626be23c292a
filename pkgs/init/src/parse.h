/*
 * The parsers of init: pure functions of their input (a string or a stream), built into init and, by
 * test/pkgs/init.test.ts, into a host test program (pkgs/init/test/parse-test.c).
 */
#ifndef BRONZE_PARSE_H
#define BRONZE_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include "service-format.h"

/* The value of KEY=VALUE among the words of a kernel command line, copied into OUT; NULL when absent or too long. */
const char *cmdline_lookup(const char *cmdline, const char *key, char *out, size_t size);

/* The module name of a module file (kernel/lib/crc-ccitt.ko: crc-ccitt), as where it starts in PATH and its length. */
const char *module_name_of(const char *path, int *len);

/* Module names treat '-' and '_' alike (crc-ccitt is crc_ccitt). */
int same_module_name(const char *a, int a_len, const char *b);

/*
 * NAME's line of modules.dep ("FILE: DEP DEP..."), cut at the colon: returns the file, *deps the
 * dependencies; NULL when NAME has none. The line lives in *line (getline's), for the caller to free.
 */
char *find_in_modules_dep(FILE *dep, const char *name, char **line, size_t *cap, char **deps);

/* The module name on a line of a modules-load.d file (trimmed, in LINE), or NULL when the line names none. */
char *module_list_line(char *line);

/* One setting of a sysctl.d file: "key = value", or "-key = value" for a key this kernel may lack. */
struct sysctl_setting {
	const char *key;
	const char *value;
	int optional;
	char path[256]; /* /proc/sys/ with the key's dots as slashes */
};

/* 1 with *S filled (KEY and VALUE point into LINE, which is cut), or 0 for a blank, comment or line without '='. */
int parse_sysctl_line(char *line, struct sysctl_setting *s);

enum restart_policy { RESTART_ALWAYS, RESTART_ON_FAILURE, RESTART_NEVER };

/* An absolute path in a service definition (a writable directory). */
typedef char service_path[MAX_SERVICE_COMMAND + 1];
typedef char service_name[MAX_SERVICE_NAME + 1];

struct service {
	service_name name;
	service_path command;
	char args[MAX_SERVICE_ARGS_BYTES]; /* the arguments, one after the other, each NUL-terminated */
	size_t args_len;
	int argc;
	enum restart_policy restart;
	/* a container service: the OCI bundle its command (crun) runs, which confines it as its config.json says */
	service_path container;
	/* confinement: who it runs as, what it keeps, what it sees, what it may use */
	uid_t uid;
	gid_t gid;
	uint64_t capabilities; /* kept, a bit per capability number; every other is dropped */
	char syscalls[MAX_SERVICE_ARGS_BYTES]; /* an allow-list (NUL-separated names); empty: the default deny-list */
	size_t syscalls_len;
	int syscall_count;
	int private_network;
	uint64_t memory_max; /* bytes; 0: no limit */
	uint64_t cpu_quota_us, cpu_period_us; /* cpu.max; 0: no limit */
	uint64_t pids_max; /* 0: no limit */
	service_path writable[MAX_SERVICE_WRITABLE];
	int writable_count;
	service_name after[MAX_SERVICE_AFTER];
	int after_count;
	int notify; /* ready when it writes a line on SERVICE_NOTIFY_FD, else once it has run a while */
	/* supervision */
	pid_t pid; /* 0 when not running */
	int64_t started_ms;
	int announced; /* "running" said for this start */
	int waiting; /* not started yet: a service it comes after is not ready */
	int ready; /* its dependants may start */
	int notify_fd; /* the read end of its notification pipe, -1 when none */
	uint64_t oom_kills; /* memory.events' oom_kill when it started */
	int restart_pending;
	int64_t restart_at_ms;
	unsigned backoff_s;
};

int valid_service_name(const char *name);

/* The number of a capability as service files name it (net_bind_service: 10), -1 when unknown. */
int capability_number(const char *name);

/* Reads a service definition (key=value lines, as bronze's build writes them); NULL when valid, else why it is not. */
const char *parse_service(FILE *file, struct service *svc);

#endif
