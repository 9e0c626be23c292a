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
	CHECK(same(service_of("name=a\ncommand=/a\nuser=root\n", &svc), "user must be a number (uid)"));
	CHECK(same(service_of("name=a\ncommand=/a\nowner=1\n", &svc), "unknown key owner"));
	CHECK(same(service_of("name=a\ncommand=/a\nuser=1\nuser=2\n", &svc), "user given twice"));
	CHECK(same(service_of("name=a\ncommand=/a\ngroup=4294967295\n", &svc), "group must be a number (gid)"));
	CHECK(same(service_of("name=a\ncommand=/a\ncap=root\n", &svc), "unknown capability root"));
	CHECK(same(service_of("name=a\ncommand=/a\nsyscall=Read\n", &svc), "syscall name Read is not a-z 0-9 _"));
	CHECK(same(service_of("name=a\ncommand=/a\nnetwork=none\n", &svc), "network must be host or private"));
	CHECK(same(service_of("name=a\ncommand=/a\nmemory_max=0\n", &svc), "memory_max must be a number of bytes above 0"));
	CHECK(same(service_of("name=a\ncommand=/a\nmemory_max=99999999999999999999\n", &svc), "memory_max must be a number of bytes above 0"));
	CHECK(same(service_of("name=a\ncommand=/a\ncpu_max=500 100000\n", &svc), "cpu_max must be QUOTA PERIOD in microseconds (each at least 1000, the period at most 1000000)"));
	CHECK(same(service_of("name=a\ncommand=/a\ncpu_max=50000\n", &svc), "cpu_max must be QUOTA PERIOD in microseconds (each at least 1000, the period at most 1000000)"));
	CHECK(same(service_of("name=a\ncommand=/a\npids_max=x\n", &svc), "pids_max must be a number above 0"));
	CHECK(same(service_of("name=a\ncommand=/a\nwritable=/etc/a\n", &svc), "writable must be a normalized path under /var/"));
	CHECK(same(service_of("name=a\ncommand=/a\nwritable=/var/../etc\n", &svc), "writable must be a normalized path under /var/"));
	CHECK(same(service_of("name=a\ncommand=/a\nafter=B\n", &svc), "after must name a service (1 to 63 characters of a-z 0-9 -)"));
	CHECK(same(service_of("name=a\ncommand=/a\nready=tcp\n", &svc), "ready must be notify"));
	CHECK(service_of("name=a\ncommand=/a\nuser=1000\ngroup=100\ncap=chown\ncap=net_bind_service\nsyscall=read\nnetwork=private\n"
			 "memory_max=16777216\ncpu_max=50000 100000\npids_max=16\nwritable=/var/lib/a\nafter=b\nready=notify\n", &svc) == NULL &&
	      svc.uid == 1000 && svc.gid == 100 && svc.capabilities == ((1u << 0) | (1u << 10)) && svc.syscall_count == 1 &&
	      svc.private_network && svc.memory_max == 16777216 && svc.cpu_quota_us == 50000 && svc.cpu_period_us == 100000 &&
	      svc.pids_max == 16 && svc.writable_count == 1 && svc.after_count == 1 && svc.notify);
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
	printf("user=%u\ngroup=%u\n", (unsigned)svc.uid, (unsigned)svc.gid);
	for (int cap = 0; cap < 64; cap++)
		if (svc.capabilities & ((uint64_t)1 << cap))
			printf("cap=%d\n", cap);
	for (size_t off = 0; off < svc.syscalls_len; off += strlen(svc.syscalls + off) + 1)
		printf("syscall=%s\n", svc.syscalls + off);
	printf("network=%s\n", svc.private_network ? "private" : "host");
	printf("memory_max=%llu\ncpu_max=%llu %llu\npids_max=%llu\n", (unsigned long long)svc.memory_max,
	       (unsigned long long)svc.cpu_quota_us, (unsigned long long)svc.cpu_period_us, (unsigned long long)svc.pids_max);
	for (int i = 0; i < svc.writable_count; i++)
		printf("writable=%s\n", svc.writable[i]);
	for (int i = 0; i < svc.after_count; i++)
		printf("after=%s\n", svc.after[i]);
	printf("ready=%s\n", svc.notify ? "notify" : "running");
	if (svc.container[0])
		printf("container=%s\n", svc.container);
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
