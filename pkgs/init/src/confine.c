/*
 * How a service starts confined: in a cgroup of its own with its limits, in new mount, PID, IPC and UTS
 * namespaces (and a network namespace when it asks), with the root read-only but for the paths it may
 * write, a private /tmp and /dev, as its user and group with only the capabilities it keeps, no new
 * privileges, and a seccomp filter (a deny-list of dangerous syscalls, or its own allow-list).
 */
#define _GNU_SOURCE
#include "init.h"
#include <grp.h>
#include <net/if.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>

#define CGROUP_ROOT "/sys/fs/cgroup"
#define SERVICES_CGROUP CGROUP_ROOT "/services"
/* a kernel without cgroup v2 runs services that ask for no limits outside any cgroup of their own */
static int have_cgroups;
static const char *const CONTROLLERS[] = { "memory", "pids", "cpu" };

/* the kernel's interfaces that musl 1.2.3's headers do not define */
#define CLONE_INTO_CGROUP 0x200000000ULL
struct clone_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};
#define MOUNT_ATTR_RDONLY 0x1
#define MOUNT_ATTR_NOSUID 0x2
#define MOUNT_ATTR_NODEV 0x4
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
struct mount_attr {
	uint64_t attr_set, attr_clr, propagation, userns_fd;
};
#define SECBIT_NOROOT (1 << 0)
#define SECBIT_NOROOT_LOCKED (1 << 1)
#define SECBIT_NO_SETUID_FIXUP (1 << 2)
#define SECBIT_NO_SETUID_FIXUP_LOCKED (1 << 3)
#define CAPABILITY_VERSION_3 0x20080522
struct cap_header {
	uint32_t version;
	int pid;
};
struct cap_data {
	uint32_t effective, permitted, inheritable;
};
struct sock_filter {
	uint16_t code;
	uint8_t jt, jf;
	uint32_t k;
};
struct sock_fprog {
	unsigned short len;
	struct sock_filter *filter;
};
#define SECCOMP_MODE_FILTER 2
#define SECCOMP_RET_KILL_PROCESS 0x80000000U
#define SECCOMP_RET_ERRNO 0x00050000U
#define SECCOMP_RET_ALLOW 0x7fff0000U
#define BPF_LD_W_ABS 0x20 /* BPF_LD | BPF_W | BPF_ABS */
#define BPF_JEQ_K 0x15 /* BPF_JMP | BPF_JEQ | BPF_K */
#define BPF_JGE_K 0x35
#define BPF_JSET_K 0x45
#define BPF_RET_K 0x06
/* offsets in struct seccomp_data: nr, arch, then the arguments (the low word first: both arches are little-endian) */
#define SECCOMP_NR 0
#define SECCOMP_ARCH 4
#define SECCOMP_ARG0 16
#if defined(__x86_64__)
#define AUDIT_ARCH 0xc000003eU
#define X32_SYSCALL_BIT 0x40000000U
#elif defined(__aarch64__)
#define AUDIT_ARCH 0xc00000b7U
#else
#error "bronze init: no seccomp architecture for this target"
#endif

/* every syscall of this architecture by name, from musl's bits/syscall.h (written at init's build) */
static const struct {
	const char *name;
	int number;
} SYSCALLS[] = {
#include "syscall-names.h"
};

/* what a service may not call unless its allow-list names it: the kernel's, the machine's and other processes' business */
static const int DENIED[] = {
	SYS_kexec_load, SYS_kexec_file_load, SYS_init_module, SYS_finit_module, SYS_delete_module, SYS_reboot,
	SYS_swapon, SYS_swapoff, SYS_mount, SYS_umount2, SYS_pivot_root, SYS_chroot, SYS_bpf, SYS_perf_event_open,
	SYS_ptrace, SYS_process_vm_readv, SYS_process_vm_writev, SYS_kcmp, SYS_keyctl, SYS_add_key, SYS_request_key,
	SYS_acct, SYS_settimeofday, SYS_clock_settime, SYS_clock_adjtime, SYS_adjtimex, SYS_syslog, SYS_setns,
	SYS_unshare, SYS_open_by_handle_at, SYS_name_to_handle_at, SYS_userfaultfd, SYS_quotactl, SYS_fsopen,
	SYS_fsconfig, SYS_fsmount, SYS_fspick, SYS_move_mount, SYS_open_tree, SYS_mount_setattr, SYS_io_uring_setup,
	SYS_io_uring_enter, SYS_io_uring_register, SYS_sethostname, SYS_setdomainname, SYS_personality,
#if defined(__x86_64__)
	SYS_iopl, SYS_ioperm, SYS_uselib, SYS_lookup_dcookie, SYS_nfsservctl, SYS_create_module,
	SYS_get_kernel_syms, SYS_query_module, SYS__sysctl,
#endif
};
#define CLONE_NEW_ANY (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWTIME)

int syscall_number(const char *name)
{
	for (size_t i = 0; i < sizeof(SYSCALLS) / sizeof(SYSCALLS[0]); i++)
		if (strcmp(SYSCALLS[i].name, name) == 0)
			return SYSCALLS[i].number;
	return -1;
}

static int write_text(const char *dir, const char *file, const char *text)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	int saved = errno;
	close(fd);
	errno = saved;
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* cgroup v2 on /sys/fs/cgroup, its memory, pids and cpu controllers given to /sys/fs/cgroup/services (each service's parent). */
void setup_cgroups(void)
{
	make_dir(CGROUP_ROOT);
	if (mount("cgroup2", CGROUP_ROOT, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, "nsdelegate") < 0) {
		say("cgroup2 not mounted: %s (a service with limits cannot start)", strerror(errno));
		return;
	}
	have_cgroups = 1;
	make_dir(SERVICES_CGROUP);
	for (size_t i = 0; i < sizeof(CONTROLLERS) / sizeof(CONTROLLERS[0]); i++) {
		char enable[16];
		snprintf(enable, sizeof(enable), "+%s", CONTROLLERS[i]);
		if (write_text(CGROUP_ROOT, "cgroup.subtree_control", enable) < 0 ||
		    write_text(SERVICES_CGROUP, "cgroup.subtree_control", enable) < 0)
			say("cgroup controller %s not available: %s", CONTROLLERS[i], strerror(errno));
	}
}

/* The oom_kill count of the service's memory.events (0 when there is none). */
uint64_t oom_kills(const struct service *svc)
{
	char path[512], line[128];
	unsigned long long count = 0;
	snprintf(path, sizeof(path), SERVICES_CGROUP "/%s/memory.events", svc->name);
	FILE *events = fopen(path, "re");
	if (!events)
		return 0;
	while (fgets(line, sizeof(line), events))
		if (sscanf(line, "oom_kill %llu", &count) == 1)
			break;
	fclose(events);
	return count;
}

/* The service's cgroup with its limits, opened for clone3; -1 with the reason said, NO_CGROUP without cgroup v2. */
#define NO_CGROUP (-2)
static int service_cgroup(struct service *svc)
{
	char dir[512];
	if (!have_cgroups) {
		if (!svc->memory_max && !svc->cpu_quota_us && !svc->pids_max)
			return NO_CGROUP;
		say("service %s cannot have its limits: this kernel has no cgroup v2", svc->name);
		return -1;
	}
	snprintf(dir, sizeof(dir), SERVICES_CGROUP "/%s", svc->name);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		say("service %s has no cgroup: mkdir %s: %s", svc->name, dir, strerror(errno));
		return -1;
	}
	char memory[24] = "max", cpu[48] = "max 100000", pids[24] = "max";
	if (svc->memory_max)
		snprintf(memory, sizeof(memory), "%llu", (unsigned long long)svc->memory_max);
	if (svc->cpu_quota_us)
		snprintf(cpu, sizeof(cpu), "%llu %llu", (unsigned long long)svc->cpu_quota_us, (unsigned long long)svc->cpu_period_us);
	if (svc->pids_max)
		snprintf(pids, sizeof(pids), "%llu", (unsigned long long)svc->pids_max);
	const struct {
		const char *file, *value;
		int wanted;
	} limits[] = { { "memory.max", memory, svc->memory_max > 0 }, { "memory.oom.group", "1", svc->memory_max > 0 },
		       { "cpu.max", cpu, svc->cpu_quota_us > 0 }, { "pids.max", pids, svc->pids_max > 0 } };
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		/* a limit the definition asks for must hold; resetting one it does not (after a change) may find no controller */
		if (write_text(dir, limits[i].file, limits[i].value) < 0 && limits[i].wanted) {
			say("service %s cannot have %s %s: %s", svc->name, limits[i].file, limits[i].value, strerror(errno));
			return -1;
		}
	}
	svc->oom_kills = oom_kills(svc);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		say("service %s cannot open its cgroup: %s", svc->name, strerror(errno));
	return fd;
}

/* Each writable path exists, a directory of the service's user and group, mode 0700; 0, or -1 with the reason said. */
static int prepare_writable(const struct service *svc)
{
	for (int i = 0; i < svc->writable_count; i++) {
		char path[sizeof(svc->writable[i])];
		memcpy(path, svc->writable[i], sizeof(path));
		for (char *slash = strchr(path + 1, '/');; slash = strchr(slash + 1, '/')) {
			if (slash)
				*slash = '\0';
			if (mkdir(path, 0755) < 0 && errno != EEXIST) {
				say("service %s cannot have writable %s: mkdir %s: %s", svc->name, svc->writable[i], path, strerror(errno));
				return -1;
			}
			if (!slash)
				break;
			*slash = '/';
		}
		/* opened without following a link: a service that can write under /var could have put one there */
		int dir = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dir < 0 || fchown(dir, svc->uid, svc->gid) < 0 || fchmod(dir, 0700) < 0) {
			say("service %s cannot have writable %s: %s", svc->name, path, strerror(errno));
			if (dir >= 0)
				close(dir);
			return -1;
		}
		close(dir);
	}
	return 0;
}

static void __attribute__((noreturn)) cannot(const struct service *svc, const char *what)
{
	say("service %s cannot be confined: %s: %s", svc->name, what, strerror(errno));
	_exit(126);
}

/* The service's view: everything read-only, nosuid and nodev but its writable paths, its own /proc, /tmp and /dev. */
static void confine_mounts(const struct service *svc)
{
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		cannot(svc, "make / private");
	for (int i = 0; i < svc->writable_count; i++)
		if (mount(svc->writable[i], svc->writable[i], NULL, MS_BIND, NULL) < 0)
			cannot(svc, svc->writable[i]);
	struct mount_attr read_only = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV };
	if (syscall(SYS_mount_setattr, AT_FDCWD, "/", AT_RECURSIVE, &read_only, sizeof(read_only)) < 0)
		cannot(svc, "make / read-only");
	struct mount_attr writable = { .attr_clr = MOUNT_ATTR_RDONLY };
	for (int i = 0; i < svc->writable_count; i++)
		if (syscall(SYS_mount_setattr, AT_FDCWD, svc->writable[i], 0, &writable, sizeof(writable)) < 0)
			cannot(svc, svc->writable[i]);
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		cannot(svc, "mount /proc");
	if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
		cannot(svc, "mount /tmp");
	if (mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") < 0)
		cannot(svc, "mount /dev");
	static const struct {
		const char *name;
		unsigned major, minor;
	} devices[] = { { "null", 1, 3 }, { "zero", 1, 5 }, { "full", 1, 7 }, { "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 } };
	char path[32];
	for (size_t i = 0; i < sizeof(devices) / sizeof(devices[0]); i++) {
		snprintf(path, sizeof(path), "/dev/%s", devices[i].name);
		if (mknod(path, S_IFCHR | 0666, makedev(devices[i].major, devices[i].minor)) < 0 || chmod(path, 0666) < 0)
			cannot(svc, path);
	}
	static const char *const links[][2] = { { "/proc/self/fd", "/dev/fd" }, { "/proc/self/fd/0", "/dev/stdin" },
						{ "/proc/self/fd/1", "/dev/stdout" }, { "/proc/self/fd/2", "/dev/stderr" } };
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
		if (symlink(links[i][0], links[i][1]) < 0)
			cannot(svc, links[i][1]);
	if (sethostname(svc->name, strlen(svc->name)) < 0)
		cannot(svc, "sethostname");
}

/* In a network namespace of its own, the service has a loopback interface, up. */
static void loopback_up(const struct service *svc)
{
	int sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	if (sock < 0 || ioctl(sock, SIOCGIFFLAGS, &ifr) < 0)
		cannot(svc, "lo");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0)
		cannot(svc, "lo up");
	close(sock);
}

/* Its user and group, and only the capabilities it keeps: in every set, the bounding and ambient ones too. */
static void confine_credentials(const struct service *svc)
{
	for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
		if (!(svc->capabilities & ((uint64_t)1 << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
			cannot(svc, "drop the bounding set");
	/* uid 0 gains no capabilities at exec, and changing the uid keeps them until they are set below */
	if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED, 0, 0, 0) < 0)
		cannot(svc, "securebits");
	if (setgroups(1, &svc->gid) < 0 || setresgid(svc->gid, svc->gid, svc->gid) < 0)
		cannot(svc, "set its group");
	if (setresuid(svc->uid, svc->uid, svc->uid) < 0)
		cannot(svc, "set its user");
	struct cap_header header = { CAPABILITY_VERSION_3, 0 };
	uint32_t low = (uint32_t)svc->capabilities, high = (uint32_t)(svc->capabilities >> 32);
	struct cap_data data[2] = { { low, low, low }, { high, high, high } };
	if (syscall(SYS_capset, &header, data) < 0)
		cannot(svc, "set its capabilities");
	for (int cap = 0; cap < 64; cap++)
		if (svc->capabilities & ((uint64_t)1 << cap) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
			cannot(svc, "raise an ambient capability");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		cannot(svc, "no_new_privs");
}

/* The syscall filter: the deny-list, or the service's allow-list (with execve, which starts it). */
static void confine_syscalls(const struct service *svc)
{
	static struct sock_filter program[16 + 2 * (MAX_SERVICE_SYSCALLS + sizeof(DENIED) / sizeof(DENIED[0]) + 1)];
	unsigned n = 0;
#define EMIT(c, t, f, value) (program[n++] = (struct sock_filter){ (c), (t), (f), (value) })
	/* each check is a compare and the return it skips on a mismatch, so no jump is ever long */
#define ANSWER(number, action) (EMIT(BPF_JEQ_K, 0, 1, (uint32_t)(number)), EMIT(BPF_RET_K, 0, 0, (action)))
	const uint32_t refuse = SECCOMP_RET_ERRNO | EPERM;
	EMIT(BPF_LD_W_ABS, 0, 0, SECCOMP_ARCH);
	EMIT(BPF_JEQ_K, 1, 0, AUDIT_ARCH);
	EMIT(BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS);
	EMIT(BPF_LD_W_ABS, 0, 0, SECCOMP_NR);
#ifdef X32_SYSCALL_BIT
	EMIT(BPF_JGE_K, 0, 1, X32_SYSCALL_BIT);
	EMIT(BPF_RET_K, 0, 0, refuse);
#endif
	/* clone3's flags are behind a pointer the filter cannot read: callers fall back to clone */
	ANSWER(SYS_clone3, SECCOMP_RET_ERRNO | ENOSYS);
	/* clone into new namespaces is refused, whatever the list */
	EMIT(BPF_JEQ_K, 0, 4, SYS_clone);
	EMIT(BPF_LD_W_ABS, 0, 0, SECCOMP_ARG0);
	EMIT(BPF_JSET_K, 0, 1, CLONE_NEW_ANY);
	EMIT(BPF_RET_K, 0, 0, refuse);
	EMIT(BPF_LD_W_ABS, 0, 0, SECCOMP_NR);
	if (svc->syscall_count == 0) {
		for (size_t i = 0; i < sizeof(DENIED) / sizeof(DENIED[0]); i++)
			ANSWER(DENIED[i], refuse);
		EMIT(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW);
	} else {
		ANSWER(SYS_execve, SECCOMP_RET_ALLOW);
		for (const char *name = svc->syscalls; name < svc->syscalls + svc->syscalls_len; name += strlen(name) + 1)
			ANSWER(syscall_number(name), SECCOMP_RET_ALLOW);
		EMIT(BPF_RET_K, 0, 0, refuse);
	}
#undef ANSWER
#undef EMIT
	struct sock_fprog filter = { (unsigned short)n, program };
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &filter, 0, 0) < 0)
		cannot(svc, "seccomp filter");
}

/* What in the definition init cannot honour, or NULL: a syscall name this architecture does not have. */
const char *confinement_problem(const struct service *svc)
{
	static char reason[128];
	for (const char *name = svc->syscalls; name < svc->syscalls + svc->syscalls_len; name += strlen(name) + 1) {
		if (syscall_number(name) < 0) {
			snprintf(reason, sizeof(reason), "unknown syscall %.60s", name);
			return reason;
		}
	}
	return NULL;
}

/* What every service's process does first: signals unblocked, a session of its own, stdin from /dev/null. */
static void start_child(const struct service *svc)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setsid();
	int null = open("/dev/null", O_RDONLY);
	if (null < 0 || dup2(null, 0) < 0)
		cannot(svc, "stdin");
}

static void __attribute__((noreturn)) run_confined(const struct service *svc, char *const argv[], int notify)
{
	start_child(svc);
	/* dup2 onto itself would keep the pipe's close-on-exec */
	if (notify >= 0 && (notify == SERVICE_NOTIFY_FD ? fcntl(notify, F_SETFD, 0) : dup2(notify, SERVICE_NOTIFY_FD)) < 0)
		cannot(svc, "notification descriptor");
	/* nothing of init's but the console (and the notification pipe) */
	if (syscall(SYS_close_range, notify >= 0 ? SERVICE_NOTIFY_FD + 1 : 3, ~0U, 0) < 0)
		cannot(svc, "close descriptors");
	confine_mounts(svc);
	if (svc->private_network)
		loopback_up(svc);
	if (chdir("/") < 0)
		cannot(svc, "chdir /");
	confine_credentials(svc);
	confine_syscalls(svc);
	execv(svc->command, argv);
	say("service %s cannot exec %s: %s", svc->name, svc->command, strerror(errno));
	_exit(127);
}

/* A container service's runtime (crun) as init's child: crun confines the container as its config.json says. */
static pid_t spawn_runtime(struct service *svc, char *const argv[])
{
	pid_t pid = fork();
	if (pid < 0) {
		say("service %s cannot fork: %s", svc->name, strerror(errno));
		return -1;
	}
	if (pid == 0) {
		start_child(svc);
		if (syscall(SYS_close_range, 3, ~0U, 0) < 0 || chdir("/") < 0)
			cannot(svc, "descriptors");
		execv(svc->command, argv);
		say("service %s cannot exec %s: %s", svc->name, svc->command, strerror(errno));
		_exit(127);
	}
	return pid;
}

pid_t spawn_confined(struct service *svc, char *const argv[])
{
	int pipe_fds[2] = { -1, -1 };
	if (svc->container[0])
		return spawn_runtime(svc, argv);
	if (prepare_writable(svc) < 0)
		return -1;
	int cgroup = service_cgroup(svc);
	if (cgroup == -1)
		return -1;
	if (svc->notify && pipe2(pipe_fds, O_CLOEXEC) < 0) {
		say("service %s has no notification pipe: %s", svc->name, strerror(errno));
		if (cgroup >= 0)
			close(cgroup);
		return -1;
	}
	struct clone_args args = {
		.flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | (svc->private_network ? CLONE_NEWNET : 0) |
			 (cgroup >= 0 ? CLONE_INTO_CGROUP : 0),
		.exit_signal = SIGCHLD,
		.cgroup = cgroup >= 0 ? (uint64_t)cgroup : 0,
	};
	pid_t pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
	if (pid == 0)
		run_confined(svc, argv, pipe_fds[1]);
	int saved = errno;
	if (cgroup >= 0)
		close(cgroup);
	if (pipe_fds[1] >= 0)
		close(pipe_fds[1]);
	if (pid < 0) {
		if (pipe_fds[0] >= 0)
			close(pipe_fds[0]);
		say("service %s cannot start: clone3: %s", svc->name, strerror(saved));
		return -1;
	}
	svc->notify_fd = pipe_fds[0];
	return pid;
}
