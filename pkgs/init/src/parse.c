/* The parsers of init (see parse.h): no I/O but the streams they are given. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "capabilities.h"
#include "parse.h"

#define STR_(x) #x
#define STR(x) STR_(x)

const char *cmdline_lookup(const char *cmdline, const char *key, char *out, size_t size)
{
	size_t len = strlen(key);
	for (const char *word = cmdline; *word;) {
		word += strspn(word, " \n");
		size_t word_len = strcspn(word, " \n");
		if (word_len > len && strncmp(word, key, len) == 0 && word[len] == '=') {
			size_t value_len = word_len - len - 1;
			if (value_len >= size)
				return NULL;
			memcpy(out, word + len + 1, value_len);
			out[value_len] = '\0';
			return out;
		}
		word += word_len;
	}
	return NULL;
}

/* The module name of a module file (kernel/lib/crc-ccitt.ko: crc-ccitt), as where it starts in PATH and its length. */
const char *module_name_of(const char *path, int *len)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	const char *ko = base;
	while ((ko = strstr(ko, ".ko")) && ko[3] != '\0' && ko[3] != '.')
		ko += 3;
	*len = (int)(ko ? (size_t)(ko - base) : strlen(base));
	return base;
}

/* Module names treat '-' and '_' alike (crc-ccitt is crc_ccitt). */
int same_module_name(const char *a, int a_len, const char *b)
{
	int i = 0;
	for (; i < a_len && b[i]; i++)
		if ((a[i] == '-' ? '_' : a[i]) != (b[i] == '-' ? '_' : b[i]))
			return 0;
	return i == a_len && b[i] == '\0';
}

/*
 * NAME's line of modules.dep ("FILE: DEP DEP..."), cut at the colon: returns the file, *deps the
 * dependencies; NULL when NAME has none. The line lives in *line (getline's), for the caller to free.
 */
char *find_in_modules_dep(FILE *dep, const char *name, char **line, size_t *cap, char **deps)
{
	while (getline(line, cap, dep) > 0) {
		char *colon = strchr(*line, ':');
		if (!colon)
			continue;
		*colon = '\0';
		int len;
		const char *module = module_name_of(*line, &len);
		if (same_module_name(module, len, name)) {
			*deps = colon + 1;
			(*deps)[strcspn(*deps, "\n")] = '\0';
			return *line;
		}
	}
	return NULL;
}

/* The module name on a line of a modules-load.d file, or NULL when the line names none. */
char *module_list_line(char *line)
{
	char *name = line + strspn(line, " \t");
	for (char *end = name + strlen(name); end > name && strchr(" \t\r\n", end[-1]);)
		*--end = '\0';
	if (*name == '\0' || *name == '#' || *name == ';')
		return NULL;
	return name;
}

int parse_sysctl_line(char *line, struct sysctl_setting *s)
{
	char *key = line + strspn(line, " \t");
	if (*key == '\0' || *key == '#' || *key == ';' || *key == '\n')
		return 0;
	s->optional = *key == '-';
	key += s->optional;
	char *eq = strchr(key, '=');
	if (!eq)
		return 0;
	char *key_end = eq;
	while (key_end > key && (key_end[-1] == ' ' || key_end[-1] == '\t'))
		key_end--;
	*key_end = '\0';
	char *value = eq + 1 + strspn(eq + 1, " \t");
	value[strcspn(value, "\n")] = '\0';
	for (char *end = value + strlen(value); end > value && (end[-1] == ' ' || end[-1] == '\t');)
		*--end = '\0';
	int n = snprintf(s->path, sizeof(s->path), "/proc/sys/%s", key);
	for (char *c = s->path + strlen("/proc/sys/"); n > 0 && *c; c++)
		if (*c == '.')
			*c = '/';
	s->key = key;
	s->value = value;
	return 1;
}

int valid_service_name(const char *name)
{
	size_t len = strlen(name);
	return len > 0 && len <= MAX_SERVICE_NAME && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-") == len;
}

/* Appends WORD and its NUL to the words in BUF (LEN bytes used, COUNT words): 1, or 0 when it does not fit. */
static int add_word(char *buf, size_t size, size_t *len, int *count, const char *word)
{
	size_t n = strlen(word) + 1;
	if (n > size - *len)
		return 0;
	memcpy(buf + *len, word, n);
	*len += n;
	(*count)++;
	return 1;
}

/* VALUE as a decimal number (digits only, no overflow) into *OUT: 1, else 0. */
static int decimal(const char *value, uint64_t *out)
{
	uint64_t n = 0;
	if (!*value)
		return 0;
	for (const char *c = value; *c; c++) {
		if (*c < '0' || *c > '9' || n > (UINT64_MAX - (uint64_t)(*c - '0')) / 10)
			return 0;
		n = n * 10 + (uint64_t)(*c - '0');
	}
	*out = n;
	return 1;
}

int capability_number(const char *name)
{
	for (int i = 0; i < CAPABILITY_COUNT; i++)
		if (strcmp(CAPABILITY_NAMES[i], name) == 0)
			return i;
	return -1;
}

/* A syscall's name as service files spell it (read, clock_nanosleep): its number is init's to find. */
static int valid_syscall_name(const char *name)
{
	size_t len = strlen(name);
	return len > 0 && len <= 63 && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") == len;
}

/* The confinement keys of a service file; NULL when LINE=VALUE is valid, "" when KEY is none of them. */
static const char *parse_confinement(const char *key, const char *value, struct service *svc, unsigned *seen)
{
	static char reason[128];
	size_t value_len = strlen(value);
	uint64_t n;
	/* the keys that may be given once, a bit each in *seen */
	static const char *const once[] = { "user", "group", "network", "memory_max", "cpu_max", "pids_max", "ready", "container" };
	for (unsigned i = 0; i < sizeof(once) / sizeof(once[0]); i++) {
		if (strcmp(key, once[i]) != 0)
			continue;
		if (*seen & (1u << i)) {
			snprintf(reason, sizeof(reason), "%.20s given twice", key);
			return reason;
		}
		*seen |= 1u << i;
	}
	if (strcmp(key, "user") == 0 || strcmp(key, "group") == 0) {
		if (!decimal(value, &n) || n >= 0xffffffffu)
			return strcmp(key, "user") == 0 ? "user must be a number (uid)" : "group must be a number (gid)";
		if (key[0] == 'u')
			svc->uid = (uid_t)n;
		else
			svc->gid = (gid_t)n;
	} else if (strcmp(key, "cap") == 0) {
		int cap = capability_number(value);
		if (cap < 0) {
			snprintf(reason, sizeof(reason), "unknown capability %.60s", value);
			return reason;
		}
		svc->capabilities |= (uint64_t)1 << cap;
	} else if (strcmp(key, "syscall") == 0) {
		if (!valid_syscall_name(value)) {
			snprintf(reason, sizeof(reason), "syscall name %.60s is not a-z 0-9 _", value);
			return reason;
		}
		if (svc->syscall_count == MAX_SERVICE_SYSCALLS)
			return "more than " STR(MAX_SERVICE_SYSCALLS) " syscalls";
		if (!add_word(svc->syscalls, sizeof(svc->syscalls), &svc->syscalls_len, &svc->syscall_count, value))
			return "syscall names too long";
	} else if (strcmp(key, "network") == 0) {
		if (strcmp(value, "private") == 0)
			svc->private_network = 1;
		else if (strcmp(value, "host") != 0)
			return "network must be host or private";
	} else if (strcmp(key, "memory_max") == 0) {
		if (!decimal(value, &svc->memory_max) || svc->memory_max == 0)
			return "memory_max must be a number of bytes above 0";
	} else if (strcmp(key, "cpu_max") == 0) {
		char quota[24], period[24];
		if (sscanf(value, "%23[0-9] %23[0-9]", quota, period) != 2 || !decimal(quota, &svc->cpu_quota_us) ||
		    !decimal(period, &svc->cpu_period_us) || svc->cpu_quota_us < 1000 || svc->cpu_period_us < 1000 ||
		    svc->cpu_period_us > 1000000 || strspn(value, "0123456789 ") != value_len)
			return "cpu_max must be QUOTA PERIOD in microseconds (each at least 1000, the period at most 1000000)";
	} else if (strcmp(key, "pids_max") == 0) {
		if (!decimal(value, &svc->pids_max) || svc->pids_max == 0)
			return "pids_max must be a number above 0";
	} else if (strcmp(key, "writable") == 0) {
		if (strncmp(value, "/var/", 5) != 0 || strstr(value, "/../") || strstr(value, "/./") || value[value_len - 1] == '/')
			return "writable must be a normalized path under /var/";
		if (value_len >= sizeof(svc->writable[0]))
			return "writable path too long";
		if (svc->writable_count == MAX_SERVICE_WRITABLE)
			return "more than " STR(MAX_SERVICE_WRITABLE) " writable paths";
		memcpy(svc->writable[svc->writable_count++], value, value_len + 1);
	} else if (strcmp(key, "after") == 0) {
		if (!valid_service_name(value))
			return "after must name a service (1 to 63 characters of a-z 0-9 -)";
		if (svc->after_count == MAX_SERVICE_AFTER)
			return "more than " STR(MAX_SERVICE_AFTER) " dependencies";
		memcpy(svc->after[svc->after_count++], value, value_len + 1);
	} else if (strcmp(key, "container") == 0) {
		if (value[0] != '/' || value_len >= sizeof(svc->container))
			return "container must be the absolute path of a bundle";
		memcpy(svc->container, value, value_len + 1);
	} else if (strcmp(key, "ready") == 0) {
		if (strcmp(value, "notify") != 0)
			return "ready must be notify";
		svc->notify = 1;
	} else {
		return "";
	}
	return NULL;
}

/* Reads a service definition (key=value lines, as bronze's build writes them); NULL when valid, else why it is not. */
const char *parse_service(FILE *file, struct service *svc)
{
	static char reason[128];
	char line[4096];
	int has_name = 0, has_command = 0, has_restart = 0;
	unsigned seen = 0;
	memset(svc, 0, sizeof(*svc));
	svc->restart = RESTART_ALWAYS;
	svc->backoff_s = 1;
	svc->notify_fd = -1;
	while (fgets(line, sizeof(line), file)) {
		size_t len = strlen(line);
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		else if (!feof(file))
			return "a line is too long";
		if (len == 0)
			continue;
		char *eq = strchr(line, '=');
		if (!eq) {
			snprintf(reason, sizeof(reason), "line without '=': %.60s", line);
			return reason;
		}
		*eq = '\0';
		const char *value = eq + 1;
		size_t value_len = strlen(value);
		if (strcmp(line, "name") == 0) {
			if (has_name++)
				return "name given twice";
			if (!valid_service_name(value))
				return "name must be 1 to 63 characters of a-z 0-9 -";
			memcpy(svc->name, value, value_len + 1);
		} else if (strcmp(line, "command") == 0) {
			if (has_command++)
				return "command given twice";
			if (value[0] != '/')
				return "command must be an absolute path";
			if (value_len >= sizeof(svc->command))
				return "command too long";
			memcpy(svc->command, value, value_len + 1);
		} else if (strcmp(line, "arg") == 0) {
			if (svc->argc == MAX_SERVICE_ARGS)
				return "more than " STR(MAX_SERVICE_ARGS) " arguments";
			if (!add_word(svc->args, sizeof(svc->args), &svc->args_len, &svc->argc, value))
				return "arguments too long";
		} else if (strcmp(line, "restart") == 0) {
			if (has_restart++)
				return "restart given twice";
			if (strcmp(value, "always") == 0)
				svc->restart = RESTART_ALWAYS;
			else if (strcmp(value, "on-failure") == 0)
				svc->restart = RESTART_ON_FAILURE;
			else if (strcmp(value, "never") == 0)
				svc->restart = RESTART_NEVER;
			else
				return "restart must be always, on-failure or never";
		} else {
			const char *confinement = parse_confinement(line, value, svc, &seen);
			if (confinement && !*confinement) {
				snprintf(reason, sizeof(reason), "unknown key %.60s", line);
				return reason;
			}
			if (confinement)
				return confinement;
		}
	}
	if (ferror(file))
		return "read error";
	if (!has_name)
		return "no name";
	if (!has_command)
		return "no command";
	return NULL;
}
