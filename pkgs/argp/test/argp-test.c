/* Checks of bronze's argp against glibc's behaviour as crun relies on it: built and run by test/pkgs/argp.test.ts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "argp.h"

static int checks, failures;
#define CHECK(cond)                                                        \
	do {                                                               \
		checks++;                                                  \
		if (!(cond)) {                                             \
			failures++;                                        \
			printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
		}                                                          \
	} while (0)

struct seen {
	char log[512];
};

static error_t parse(int key, char *arg, struct argp_state *state)
{
	struct seen *seen = state->input;
	char item[64];
	switch (key) {
	case 'd':
	case 'V':
	case 1000:
	case 'r':
		snprintf(item, sizeof(item), "%d=%s;", key, arg ? arg : "(null)");
		break;
	case ARGP_KEY_NO_ARGS:
		snprintf(item, sizeof(item), "no-args;");
		break;
	case ARGP_KEY_END:
		snprintf(item, sizeof(item), "end;");
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	strncat(seen->log, item, sizeof(seen->log) - strlen(seen->log) - 1);
	return 0;
}

static const struct argp_option options[] = {
	{ "debug", 'd', 0, 0, "verbose", 0 },
	{ "root", 'r', "DIR", 0, "state directory", 0 },
	{ "log", 1000, "FILE", OPTION_ARG_OPTIONAL, NULL, 0 },
	{ "verbose-alias", 0, 0, OPTION_ALIAS, NULL, 0 },
	{ NULL, 'V', 0, OPTION_ALIAS, NULL, 0 },
	{ 0 },
};
static const struct argp parser = { options, parse, "COMMAND", "a test\vafter", NULL, NULL, NULL };

static const char *run(char **argv, int argc, int *index)
{
	static struct seen seen;
	memset(&seen, 0, sizeof(seen));
	error_t err = argp_parse(&parser, argc, argv, ARGP_IN_ORDER | ARGP_NO_EXIT, index, &seen);
	if (err)
		snprintf(seen.log + strlen(seen.log), sizeof(seen.log) - strlen(seen.log), "error=%d;", err);
	return seen.log;
}

int main(void)
{
	int index = -1;
	char *a[] = { "crun", "--debug", "-r", "/run/x", "--log=f", "run", "-d", "id", NULL };
	CHECK(strcmp(run(a, 8, &index), "100=(null);114=/run/x;1000=f;") == 0 && index == 5);
	char *b[] = { "crun", "-dr/tmp", "--root", "/a", "--log", NULL };
	CHECK(strcmp(run(b, 5, &index), "100=(null);114=/tmp;114=/a;1000=(null);no-args;end;") == 0 && index == 5);
	char *c[] = { "crun", "-V", NULL };
	CHECK(strcmp(run(c, 2, &index), "86=(null);no-args;end;") == 0);
	char *d[] = { "crun", "--nope", NULL };
	CHECK(strstr(run(d, 2, &index), "error=") != NULL);
	char *e[] = { "crun", "--root", NULL };
	CHECK(strstr(run(e, 2, &index), "error=") != NULL);
	char *f[] = { "crun", "--debug=x", NULL };
	CHECK(strstr(run(f, 2, &index), "error=") != NULL);
	char *g[] = { "crun", "--", "-d", NULL };
	CHECK(strcmp(run(g, 3, &index), "") == 0 && index == 2);
	char *h[] = { "crun", "x", NULL };
	CHECK(strstr(run(h, 2, NULL), "error=") != NULL);
	if (failures) {
		printf("%d of %d checks failed\n", failures, checks);
		return 1;
	}
	printf("%d checks passed\n", checks);
	return 0;
}
