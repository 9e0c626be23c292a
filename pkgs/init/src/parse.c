/* The parsers of init (see parse.h): no I/O but the streams they are given. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

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

/* Reads a service definition (key=value lines, as bronze's build writes them); NULL when valid, else why it is not. */
const char *parse_service(FILE *file, struct service *svc)
{
	static char reason[128];
	char line[4096];
	int has_name = 0, has_command = 0, has_restart = 0;
	memset(svc, 0, sizeof(*svc));
	svc->restart = RESTART_ALWAYS;
	svc->backoff_s = 1;
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
			if (value_len + 1 > sizeof(svc->args) - svc->args_len)
				return "arguments too long";
			memcpy(svc->args + svc->args_len, value, value_len + 1);
			svc->args_len += value_len + 1;
			svc->argc++;
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
			snprintf(reason, sizeof(reason), "unknown key %.60s", line);
			return reason;
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
