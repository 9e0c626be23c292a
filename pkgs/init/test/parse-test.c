/*
 * Host-built tests of init's parsers (test/pkgs/init.test.ts compiles and runs this with the host's gcc).
 * With no argument: every check, then "N checks passed" (exit 0) or each failure (exit 1).
 * With `--service FILE`: the service definition as init reads it, one field a line (or "invalid: why").
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

static int checks, failures;

#define CHECK(cond)                                                                   \
	do {                                                                          \
		checks++;                                                             \
		if (!(cond)) {                                                        \
			failures++;                                                   \
			printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
		}                                                                     \
	} while (0)

static int same(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static void test_cmdline(void)
{
	char out[64];
	const char *line = "console=ttyS0 bronze.modules=a,b quiet bronze.poweroff=1\n";
	CHECK(same(cmdline_lookup(line, "bronze.modules", out, sizeof(out)), "a,b"));
	CHECK(same(cmdline_lookup(line, "bronze.poweroff", out, sizeof(out)), "1"));
	CHECK(same(cmdline_lookup(line, "console", out, sizeof(out)), "ttyS0"));
	CHECK(cmdline_lookup(line, "quiet", out, sizeof(out)) == NULL);
	CHECK(cmdline_lookup(line, "bronze", out, sizeof(out)) == NULL);
	CHECK(cmdline_lookup("bronze.modules_extra=x", "bronze.modules", out, sizeof(out)) == NULL);
	CHECK(same(cmdline_lookup("a= b=2", "a", out, sizeof(out)), ""));
	CHECK(cmdline_lookup("key=0123456789", "key", out, 5) == NULL);
	CHECK(cmdline_lookup("", "key", out, sizeof(out)) == NULL);
}

static void test_module_names(void)
{
	int len;
	const char *name = module_name_of("kernel/lib/crc-ccitt.ko", &len);
	CHECK(len == 9 && strncmp(name, "crc-ccitt", 9) == 0);
	name = module_name_of("extra/bronze_hello.ko.xz", &len);
	CHECK(len == 12 && strncmp(name, "bronze_hello", 12) == 0);
	name = module_name_of("plain", &len);
	CHECK(len == 5 && strncmp(name, "plain", 5) == 0);
	CHECK(same_module_name("crc-ccitt", 9, "crc_ccitt"));
	CHECK(same_module_name("crc_ccitt", 9, "crc-ccitt"));
	CHECK(!same_module_name("crc-ccitt", 9, "crc-ccitt2"));
	CHECK(!same_module_name("crc", 3, "crc-ccitt"));
}

static void test_modules_dep(void)
{
	char text[] = "kernel/lib/crc-ccitt.ko:\nno colon here\nextra/bronze_hello.ko: kernel/lib/crc-ccitt.ko kernel/lib/x.ko\n";
	FILE *dep = fmemopen(text, strlen(text), "r");
	char *line = NULL, *deps = NULL;
	size_t cap = 0;
	CHECK(same(find_in_modules_dep(dep, "bronze-hello", &line, &cap, &deps), "extra/bronze_hello.ko"));
	CHECK(same(deps, " kernel/lib/crc-ccitt.ko kernel/lib/x.ko"));
	rewind(dep);
	CHECK(same(find_in_modules_dep(dep, "crc_ccitt", &line, &cap, &deps), "kernel/lib/crc-ccitt.ko"));
	CHECK(same(deps, ""));
	rewind(dep);
	CHECK(find_in_modules_dep(dep, "absent", &line, &cap, &deps) == NULL);
	free(line);
	fclose(dep);
}

static void test_modules_load_d(void)
{
	char a[] = "  crc-ccitt \t\r\n", b[] = "# comment\n", c[] = "; also\n", d[] = "\n", e[] = "   \n";
	CHECK(same(module_list_line(a), "crc-ccitt"));
	CHECK(module_list_line(b) == NULL);
	CHECK(module_list_line(c) == NULL);
	CHECK(module_list_line(d) == NULL);
	CHECK(module_list_line(e) == NULL);
}

static void test_sysctl(void)
{
	struct sysctl_setting s;
	char a[] = "kernel.kptr_restrict = 2\n", b[] = "-net.ipv4.tcp_syncookies=1  \n", c[] = "# kernel.x = 1\n";
	char d[] = "no equals sign\n", e[] = "  \n", f[] = "; comment\n", g[] = "kernel.printk = 3 4 1 3\n";
	CHECK(parse_sysctl_line(a, &s) == 1 && same(s.key, "kernel.kptr_restrict") && same(s.value, "2") && !s.optional);
	CHECK(same(s.path, "/proc/sys/kernel/kptr_restrict"));
	CHECK(parse_sysctl_line(b, &s) == 1 && same(s.key, "net.ipv4.tcp_syncookies") && same(s.value, "1") && s.optional);
	CHECK(same(s.path, "/proc/sys/net/ipv4/tcp_syncookies"));
	CHECK(parse_sysctl_line(c, &s) == 0);
	CHECK(parse_sysctl_line(d, &s) == 0);
	CHECK(parse_sysctl_line(e, &s) == 0);
	CHECK(parse_sysctl_line(f, &s) == 0);
	CHECK(parse_sysctl_line(g, &s) == 1 && same(s.value, "3 4 1 3"));
}

/* parse_service on TEXT: NULL when valid (into *svc), else the reason. */
static const char *service_of(const char *text, struct service *svc)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	const char *reason = parse_service(f, svc);
	fclose(f);
	return reason;
}

/* parse_service on a definition whose KEY (name or command) is LENGTH bytes long. */
static const char *value_of_length(const char *key, int length)
{
	char value[512], text[1100];
	struct service svc;
	memset(value, 'v', (size_t)length);
	value[0] = strcmp(key, "command") == 0 ? '/' : 'v';
	value[length] = '\0';
	snprintf(text, sizeof(text), "name=%s\ncommand=%s\n", strcmp(key, "name") == 0 ? value : "a", strcmp(key, "command") == 0 ? value : "/a");
	return service_of(text, &svc);
}

static void test_services(void)
{
	struct service svc;
	CHECK(service_of("name=hello\ncommand=/usr/bin/hello\narg=-v\narg=two words\nrestart=on-failure\n", &svc) == NULL);
	CHECK(same(svc.name, "hello") && same(svc.command, "/usr/bin/hello") && svc.argc == 2 && svc.restart == RESTART_ON_FAILURE);
	CHECK(same(svc.args, "-v") && same(svc.args + 3, "two words"));
	CHECK(service_of("name=a\ncommand=/a\n", &svc) == NULL && svc.restart == RESTART_ALWAYS && svc.argc == 0);
	CHECK(same(service_of("command=/a\n", &svc), "no name"));
	CHECK(same(service_of("name=a\n", &svc), "no command"));
	CHECK(same(service_of("name=a\ncommand=relative\n", &svc), "command must be an absolute path"));
	CHECK(same(service_of("name=A\ncommand=/a\n", &svc), "name must be 1 to 63 characters of a-z 0-9 -"));
	CHECK(same(service_of("name=a\nname=b\ncommand=/a\n", &svc), "name given twice"));
	CHECK(same(service_of("name=a\ncommand=/a\nrestart=sometimes\n", &svc), "restart must be always, on-failure or never"));
	CHECK(same(service_of("name=a\ncommand=/a\nuser=root\n", &svc), "unknown key user"));
	CHECK(same(service_of("name=a\ncommand=/a\njunk\n", &svc), "line without '=': junk"));

	char text[8192];
	int n = snprintf(text, sizeof(text), "name=a\ncommand=/a\n");
	for (int i = 0; i <= MAX_SERVICE_ARGS; i++)
		n += snprintf(text + n, sizeof(text) - n, "arg=%d\n", i);
	CHECK(same(service_of(text, &svc), "more than 32 arguments"));

	CHECK(value_of_length("name", MAX_SERVICE_NAME) == NULL);
	CHECK(value_of_length("name", MAX_SERVICE_NAME + 1) != NULL);
	CHECK(value_of_length("command", MAX_SERVICE_COMMAND) == NULL);
	CHECK(same(value_of_length("command", MAX_SERVICE_COMMAND + 1), "command too long"));

	char long_line[5000];
	memset(long_line, 'x', sizeof(long_line) - 2);
	memcpy(long_line, "arg=", 4);
	long_line[sizeof(long_line) - 2] = '\n';
	long_line[sizeof(long_line) - 1] = '\0';
	snprintf(text, sizeof(text), "name=a\ncommand=/a\n%s", long_line);
	CHECK(same(service_of(text, &svc), "a line is too long"));
}

static int print_service(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		perror(path);
		return 2;
	}
	struct service svc;
	const char *reason = parse_service(f, &svc);
	fclose(f);
	if (reason) {
		printf("invalid: %s\n", reason);
		return 0;
	}
	static const char *const policies[] = { "always", "on-failure", "never" };
	printf("name=%s\ncommand=%s\n", svc.name, svc.command);
	for (size_t off = 0; off < svc.args_len; off += strlen(svc.args + off) + 1)
		printf("arg=%s\n", svc.args + off);
	printf("restart=%s\n", policies[svc.restart]);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--service") == 0)
		return print_service(argv[2]);
	test_cmdline();
	test_module_names();
	test_modules_dep();
	test_modules_load_d();
	test_sysctl();
	test_services();
	if (failures) {
		printf("%d of %d checks failed\n", failures, checks);
		return 1;
	}
	printf("%d checks passed\n", checks);
	return 0;
}
