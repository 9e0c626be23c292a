/* bronze's argp (see argp.h): parsing, help and errors. */
#define _GNU_SOURCE
#include "argp.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* a program defines these if it wants to; weak, so that its own definitions win */
__attribute__((weak)) const char *argp_program_version;
__attribute__((weak)) void (*argp_program_version_hook)(FILE *stream, struct argp_state *state);
__attribute__((weak)) const char *argp_program_bug_address;
__attribute__((weak)) error_t argp_err_exit_status = 64; /* EX_USAGE */

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

static int has_version(void)
{
	return argp_program_version || argp_program_version_hook;
}

/* The option an entry stands for: an alias takes its argument and flags from the nearest entry before it that is not one. */
static const struct argp_option *real_option(const struct argp_option *options, const struct argp_option *opt)
{
	while (opt > options && (opt->flags & OPTION_ALIAS))
		opt--;
	return opt;
}

static int is_end(const struct argp_option *o)
{
	return !o->name && !o->key && !o->doc && !o->arg;
}

static const struct argp_option *find_long(const struct argp_option *options, const char *name, size_t len)
{
	for (const struct argp_option *o = options; o && !is_end(o); o++)
		if (o->name && strlen(o->name) == len && strncmp(o->name, name, len) == 0 && !(o->flags & OPTION_DOC))
			return o;
	return NULL;
}

static const struct argp_option *find_short(const struct argp_option *options, int key)
{
	for (const struct argp_option *o = options; o && !is_end(o); o++)
		if (o->key == key && key > 0 && key < 128 && !(o->flags & OPTION_DOC))
			return o;
	return NULL;
}

/* The doc before "\v" (shown above the options) or after it (below). */
static void print_doc(FILE *stream, const char *doc, int after)
{
	if (!doc)
		return;
	const char *split = strchr(doc, '\v');
	if (!after)
		fprintf(stream, "%.*s\n", split ? (int)(split - doc) : (int)strlen(doc), doc);
	else if (split && split[1])
		fprintf(stream, "\n%s\n", split + 1);
}

static void print_option(FILE *stream, const struct argp_option *opt, const struct argp_option *real)
{
	char spec[128];
	int n = 0;
	if (opt->key > 0 && opt->key < 128 && opt->key != ' ')
		n += snprintf(spec + n, sizeof(spec) - (size_t)n, "-%c%s", opt->key, opt->name ? ", " : "");
	else
		n += snprintf(spec + n, sizeof(spec) - (size_t)n, "    ");
	if (opt->name && n < (int)sizeof(spec))
		n += snprintf(spec + n, sizeof(spec) - (size_t)n, "--%s", opt->name);
	if (real->arg && n < (int)sizeof(spec))
		snprintf(spec + n, sizeof(spec) - (size_t)n, real->flags & OPTION_ARG_OPTIONAL ? "[=%s]" : "=%s", real->arg);
	fprintf(stream, "  %-28s %s\n", spec, opt->doc ? opt->doc : "");
}

void argp_help(const struct argp *argp, FILE *stream, unsigned flags, char *name)
{
	if (flags & (ARGP_HELP_USAGE | ARGP_HELP_SHORT_USAGE))
		fprintf(stream, "Usage: %s [OPTION...]%s%s\n", name, argp->args_doc ? " " : "", argp->args_doc ? argp->args_doc : "");
	if (flags & ARGP_HELP_PRE_DOC)
		print_doc(stream, argp->doc, 0);
	if (flags & ARGP_HELP_LONG) {
		fputc('\n', stream);
		for (const struct argp_option *o = argp->options; o && !is_end(o); o++) {
			if (o->flags & OPTION_HIDDEN)
				continue;
			if (o->flags & OPTION_DOC || (!o->name && !o->key))
				fprintf(stream, "%s\n", o->doc ? o->doc : "");
			else
				print_option(stream, o, real_option(argp->options, o));
		}
		static const struct argp_option builtin[] = { { "help", '?', 0, 0, "give this help list", 0 },
							      { "usage", 0, 0, 0, "give a short usage message", 0 },
							      { "version", 'V', 0, 0, "print program version", 0 } };
		for (int i = 0; i < (has_version() ? 3 : 2); i++)
			print_option(stream, &builtin[i], &builtin[i]);
	}
	if (flags & ARGP_HELP_POST_DOC)
		print_doc(stream, argp->doc, 1);
	if (flags & ARGP_HELP_SEE)
		fprintf(stream, "Try `%s --help' or `%s --usage' for more information.\n", name, name);
	if (flags & ARGP_HELP_BUG_ADDR && argp_program_bug_address)
		fprintf(stream, "\nReport bugs to %s.\n", argp_program_bug_address);
	if (flags & ARGP_HELP_EXIT_ERR)
		exit(argp_err_exit_status);
	if (flags & ARGP_HELP_EXIT_OK)
		exit(0);
}

void argp_state_help(const struct argp_state *state, FILE *stream, unsigned flags)
{
	if (state && state->flags & ARGP_NO_EXIT)
		flags &= ~(unsigned)(ARGP_HELP_EXIT_ERR | ARGP_HELP_EXIT_OK);
	if (state && state->flags & ARGP_NO_ERRS && stream == state->err_stream)
		return;
	argp_help(state ? state->root_argp : &(struct argp){ 0 }, stream, flags, state ? state->name : (char *)"");
}

void argp_usage(const struct argp_state *state)
{
	argp_state_help(state, state ? state->err_stream : stderr, ARGP_HELP_STD_USAGE);
}

void argp_error(const struct argp_state *state, const char *fmt, ...)
{
	FILE *stream = state ? state->err_stream : stderr;
	if (state && state->flags & ARGP_NO_ERRS)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stream, "%s: ", state ? state->name : "");
	vfprintf(stream, fmt, ap);
	fputc('\n', stream);
	va_end(ap);
	argp_state_help(state, stream, ARGP_HELP_STD_ERR);
}

void argp_failure(const struct argp_state *state, int status, int errnum, const char *fmt, ...)
{
	FILE *stream = state ? state->err_stream : stderr;
	if (!(state && state->flags & ARGP_NO_ERRS)) {
		va_list ap;
		va_start(ap, fmt);
		fprintf(stream, "%s: ", state ? state->name : "");
		vfprintf(stream, fmt, ap);
		if (errnum)
			fprintf(stream, ": %s", strerror(errnum));
		fputc('\n', stream);
		va_end(ap);
	}
	if (status && !(state && state->flags & ARGP_NO_EXIT))
		exit(status);
}

/* The parser's answer to KEY; what the built-in --help, --usage and --version do when it has none. */
static error_t deliver(const struct argp *argp, struct argp_state *state, int key, char *arg)
{
	return argp->parser ? argp->parser(key, arg, state) : ARGP_ERR_UNKNOWN;
}

static int builtin_option(struct argp_state *state, const char *name, int key)
{
	if (state->flags & ARGP_NO_HELP)
		return 0;
	if ((name && strcmp(name, "help") == 0) || key == '?') {
		argp_state_help(state, state->out_stream, ARGP_HELP_STD_HELP);
		return 1;
	}
	if (name && strcmp(name, "usage") == 0) {
		argp_state_help(state, state->out_stream, ARGP_HELP_USAGE | ARGP_HELP_EXIT_OK);
		return 1;
	}
	if (has_version() && ((name && strcmp(name, "version") == 0) || key == 'V')) {
		if (argp_program_version_hook)
			argp_program_version_hook(state->out_stream, state);
		else
			fprintf(state->out_stream, "%s\n", argp_program_version);
		if (!(state->flags & ARGP_NO_EXIT))
			exit(0);
		return 1;
	}
	return 0;
}

/* One option with its argument, if any: 0, or the error to return. */
static error_t parse_option(const struct argp *argp, struct argp_state *state, const struct argp_option *opt, char *arg, const char *spelled)
{
	error_t err = deliver(argp, state, opt->key, arg);
	if (err == ARGP_ERR_UNKNOWN) {
		argp_error(state, "unrecognized option '%s'", spelled);
		return EINVAL;
	}
	return err;
}

static error_t parse_long(const struct argp *argp, struct argp_state *state, char *word)
{
	char *name = word + 2, *eq = strchr(name, '=');
	size_t len = eq ? (size_t)(eq - name) : strlen(name);
	const struct argp_option *opt = find_long(argp->options, name, len);
	if (!opt) {
		char builtin[16];
		snprintf(builtin, sizeof(builtin), "%.*s", (int)len, name);
		if (builtin_option(state, builtin, 0))
			return 0;
		argp_error(state, "unrecognized option '%s'", word);
		return EINVAL;
	}
	const struct argp_option *real = real_option(argp->options, opt);
	char *arg = NULL;
	if (eq) {
		if (!real->arg) {
			argp_error(state, "option '--%s' doesn't allow an argument", opt->name);
			return EINVAL;
		}
		arg = eq + 1;
	} else if (real->arg && !(real->flags & OPTION_ARG_OPTIONAL)) {
		if (state->next >= state->argc) {
			argp_error(state, "option '--%s' requires an argument", opt->name);
			return EINVAL;
		}
		arg = state->argv[state->next++];
	}
	return parse_option(argp, state, opt, arg, word);
}

static error_t parse_short(const struct argp *argp, struct argp_state *state, char *word)
{
	for (char *c = word + 1; *c; c++) {
		const struct argp_option *opt = find_short(argp->options, (unsigned char)*c);
		char spelled[3] = { '-', *c, '\0' };
		if (!opt) {
			if (builtin_option(state, NULL, (unsigned char)*c))
				return 0;
			argp_error(state, "invalid option -- '%c'", *c);
			return EINVAL;
		}
		const struct argp_option *real = real_option(argp->options, opt);
		if (!real->arg) {
			error_t err = parse_option(argp, state, opt, NULL, spelled);
			if (err)
				return err;
			continue;
		}
		char *arg = c[1] ? c + 1 : NULL;
		if (!arg && !(real->flags & OPTION_ARG_OPTIONAL)) {
			if (state->next >= state->argc) {
				argp_error(state, "option requires an argument -- '%c'", *c);
				return EINVAL;
			}
			arg = state->argv[state->next++];
		}
		return parse_option(argp, state, opt, arg, spelled);
	}
	return 0;
}

error_t argp_parse(const struct argp *argp, int argc, char **argv, unsigned flags, int *arg_index, void *input)
{
	struct argp_state state = {
		.root_argp = argp, .argc = argc, .argv = argv, .next = flags & ARGP_PARSE_ARGV0 ? 0 : 1, .flags = flags,
		.input = input, .name = (char *)(argc > 0 ? base_name(argv[0]) : ""), .err_stream = stderr, .out_stream = stdout,
	};
	error_t err = deliver(argp, &state, ARGP_KEY_INIT, NULL);
	if (err && err != ARGP_ERR_UNKNOWN)
		return err;
	int stopped = 0;
	while (state.next < argc && !stopped) {
		char *word = argv[state.next];
		if (!state.quoted && strcmp(word, "--") == 0) {
			state.quoted = ++state.next;
			continue;
		}
		if (!state.quoted && word[0] == '-' && word[1]) {
			state.next++;
			err = word[1] == '-' ? parse_long(argp, &state, word) : parse_short(argp, &state, word);
		} else {
			/* an argument: the parser takes it, or all that are left, or the parse stops here */
			state.next++;
			err = deliver(argp, &state, ARGP_KEY_ARG, word);
			if (err == ARGP_ERR_UNKNOWN) {
				state.next--;
				err = deliver(argp, &state, ARGP_KEY_ARGS, NULL);
				if (!err) {
					/* it took every argument left */
					state.arg_num += (unsigned)(argc - state.next);
					state.next = argc;
				} else if (err == ARGP_ERR_UNKNOWN) {
					if (!arg_index) {
						argp_error(&state, "too many arguments");
						err = EINVAL;
					} else {
						err = 0;
						stopped = 1;
					}
				}
			} else if (!err) {
				state.arg_num++;
			}
		}
		if (err) {
			deliver(argp, &state, ARGP_KEY_ERROR, NULL);
			return err;
		}
	}
	if (!stopped) {
		if (state.arg_num == 0 && (err = deliver(argp, &state, ARGP_KEY_NO_ARGS, NULL)) && err != ARGP_ERR_UNKNOWN)
			return err;
		if ((err = deliver(argp, &state, ARGP_KEY_END, NULL)) && err != ARGP_ERR_UNKNOWN)
			return err;
	}
	if (arg_index)
		*arg_index = state.next;
	deliver(argp, &state, ARGP_KEY_SUCCESS, NULL);
	deliver(argp, &state, ARGP_KEY_FINI, NULL);
	return 0;
}
