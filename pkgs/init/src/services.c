/*
 * The services of /usr/lib/bronze/services: started confined (confine.c) in name order, each once the
 * services it comes after are ready, restarted as their policy says; orphans reaped.
 */
#define _GNU_SOURCE
#include "init.h"
#include <poll.h>
#include <sys/signalfd.h>

#define SERVICE_RUNNING_MS 2000
#define SERVICE_STABLE_MS 10000
#define SERVICE_MAX_BACKOFF_S 32


static struct service services[MAX_SERVICES];
static int service_count;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}



static int service_file(const struct dirent *entry)
{
	return has_suffix(entry->d_name, SERVICE_SUFFIX);
}

static struct service *find_service(const char *name)
{
	for (int i = 0; i < service_count; i++)
		if (strcmp(services[i].name, name) == 0)
			return &services[i];
	return NULL;
}

/* Reads the services of SERVICES_DIR in name order; an invalid file is reported and skipped. */
static void read_services(void)
{
	struct dirent **files;
	int count = scandir(SERVICES_DIR, &files, service_file, alphasort);
	if (count < 0)
		return;
	for (int i = 0; i < count; i++) {
		const char *file = files[i]->d_name;
		if (service_count == MAX_SERVICES) {
			say("service %s invalid: more than %d services", file, MAX_SERVICES);
			free(files[i]);
			continue;
		}
		struct service *svc = &services[service_count];
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", SERVICES_DIR, file);
		const char *reason;
		FILE *def = fopen(path, "re");
		if (def) {
			reason = parse_service(def, svc);
			fclose(def);
		} else {
			reason = strerror(errno);
		}
		for (int j = 0; !reason && j < service_count; j++)
			if (strcmp(services[j].name, svc->name) == 0)
				reason = "another service has this name";
		if (!reason)
			reason = confinement_problem(svc);
		if (reason)
			say("service %s invalid: %s", file, reason);
		else
			service_count++;
		free(files[i]);
	}
	free(files);
	/* a dependency that is not there would hold its dependants back forever */
	for (int i = 0; i < service_count; i++) {
		for (int d = 0; d < services[i].after_count; d++) {
			if (find_service(services[i].after[d]))
				continue;
			say("service %s invalid: it comes after %s, which is not a valid service", services[i].name, services[i].after[d]);
			memmove(&services[i], &services[i + 1], (size_t)(service_count - i - 1) * sizeof(services[0]));
			service_count--;
			i = -1;
			break;
		}
	}
}

/* The process ended (or never started): restart it after its backoff, or leave it stopped, as its policy says. */
static void service_ended(struct service *svc, int failed)
{
	int64_t now = now_ms();
	int64_t lived = now - svc->started_ms;
	svc->pid = 0;
	svc->ready = 0;
	if (svc->notify_fd >= 0) {
		close(svc->notify_fd);
		svc->notify_fd = -1;
	}
	if (svc->restart == RESTART_NEVER || (svc->restart == RESTART_ON_FAILURE && !failed)) {
		say("service %s stopped", svc->name);
		return;
	}
	/* a service that keeps failing fast is restarted ever less often; one that ran a while, at once */
	if (lived >= SERVICE_STABLE_MS)
		svc->backoff_s = 1;
	unsigned delay = svc->backoff_s;
	if (lived < SERVICE_STABLE_MS && svc->backoff_s < SERVICE_MAX_BACKOFF_S)
		svc->backoff_s *= 2;
	svc->restart_pending = 1;
	svc->restart_at_ms = now + (int64_t)delay * 1000;
	say("service %s restarting in %u s", svc->name, delay);
}

/* What a start says of the service's confinement, e.g. " uid=1000 gid=1000 caps=0x400 network=private memory.max=16777216". */
static void describe_confinement(const struct service *svc, char *out, size_t size)
{
	out[0] = '\0';
	if (svc->container[0]) {
		append(out, size, " container=%s", svc->container);
		return;
	}
	append(out, size, " uid=%u gid=%u caps=0x%llx seccomp=%s network=%s", (unsigned)svc->uid, (unsigned)svc->gid,
	       (unsigned long long)svc->capabilities, svc->syscall_count ? "allow-list" : "deny-list",
	       svc->private_network ? "private" : "host");
	if (svc->memory_max)
		append(out, size, " memory.max=%llu", (unsigned long long)svc->memory_max);
	if (svc->cpu_quota_us)
		append(out, size, " cpu.max=%llu/%llu", (unsigned long long)svc->cpu_quota_us, (unsigned long long)svc->cpu_period_us);
	if (svc->pids_max)
		append(out, size, " pids.max=%llu", (unsigned long long)svc->pids_max);
}

/* Starts a service confined, stdin from /dev/null, stdout and stderr on the console. */
static int start_service(struct service *svc)
{
	char *argv[MAX_SERVICE_ARGS + 2];
	char *arg = svc->args;
	argv[0] = svc->command;
	for (int i = 0; i < svc->argc; i++) {
		argv[i + 1] = arg;
		arg += strlen(arg) + 1;
	}
	argv[svc->argc + 1] = NULL;
	svc->restart_pending = 0;
	svc->announced = 0;
	svc->started_ms = now_ms();
	pid_t pid = spawn_confined(svc, argv);
	if (pid < 0) {
		service_ended(svc, 1);
		return 0;
	}
	svc->pid = pid;
	char confinement[256];
	describe_confinement(svc, confinement, sizeof(confinement));
	say("service %s started pid=%d%s", svc->name, (int)pid, confinement);
	return 1;
}

/* Whether every service SVC comes after is ready. */
static int dependencies_ready(const struct service *svc)
{
	for (int d = 0; d < svc->after_count; d++) {
		const struct service *dep = find_service(svc->after[d]);
		if (!dep || !dep->ready)
			return 0;
	}
	return 1;
}

/* Starts every service that waits for no other; returns how many started or wait for their dependencies. */
int start_services(void)
{
	int started = 0;
	setup_cgroups();
	read_services();
	for (int i = 0; i < service_count; i++) {
		struct service *svc = &services[i];
		svc->waiting = svc->after_count > 0;
		if (svc->waiting)
			started++;
		else
			started += start_service(svc);
	}
	return started;
}

static void service_ready(struct service *svc, const char *how)
{
	svc->ready = 1;
	say("service %s ready (%s)", svc->name, how);
}

/* Reaps every ended child: services (reported, restarted as their policy says) and orphans. */
static void reap(void)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int i = 0; i < service_count; i++) {
			struct service *svc = &services[i];
			if (svc->pid != pid)
				continue;
			uint64_t kills = oom_kills(svc);
			if (WIFEXITED(status))
				say("service %s exited status=%d", svc->name, WEXITSTATUS(status));
			else if (WTERMSIG(status) == SIGKILL && kills > svc->oom_kills)
				say("service %s killed by the OOM killer: memory.max=%llu reached", svc->name, (unsigned long long)svc->memory_max);
			else
				say("service %s killed by signal %d", svc->name, WTERMSIG(status));
			service_ended(svc, !WIFEXITED(status) || WEXITSTATUS(status) != 0);
			break;
		}
	}
}

/* A line on a service's notification pipe makes it ready; its end without one, not. */
static void read_notification(struct service *svc)
{
	char buf[256];
	ssize_t n = read(svc->notify_fd, buf, sizeof(buf));
	if (n > 0 && memchr(buf, '\n', (size_t)n) == NULL)
		return;
	close(svc->notify_fd);
	svc->notify_fd = -1;
	if (n > 0)
		service_ready(svc, "notified");
}

/* PID 1's last duty, forever: reap, start and restart the services that are due, and say which have come up. */
void __attribute__((noreturn)) supervise(void)
{
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	/* blocked, SIGCHLD stays pending for PID 1 (unblocked, PID 1 ignores it) and is read from the signalfd */
	sigprocmask(SIG_BLOCK, &chld, NULL);
	int sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0)
		say("no signalfd: %s (services are reaped once a second)", strerror(errno));
	for (;;) {
		struct signalfd_siginfo info;
		while (sfd >= 0 && read(sfd, &info, sizeof(info)) == (ssize_t)sizeof(info))
			;
		reap();
		int64_t now = now_ms(), wait_ms = 1000;
		struct pollfd fds[MAX_SERVICES + 1];
		struct service *notifying[MAX_SERVICES + 1];
		nfds_t nfds = 0;
		fds[nfds++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		for (int i = 0; i < service_count; i++) {
			struct service *svc = &services[i];
			if (svc->waiting && dependencies_ready(svc)) {
				svc->waiting = 0;
				start_service(svc);
			}
			if (svc->restart_pending && now >= svc->restart_at_ms)
				start_service(svc);
			if (svc->pid && !svc->announced && now - svc->started_ms >= SERVICE_RUNNING_MS) {
				svc->announced = 1;
				say("service %s running pid=%d", svc->name, (int)svc->pid);
				if (!svc->notify)
					service_ready(svc, "running");
			}
			if (svc->notify_fd >= 0) {
				notifying[nfds] = svc;
				fds[nfds++] = (struct pollfd){ .fd = svc->notify_fd, .events = POLLIN };
			}
			int64_t due = svc->restart_pending ? svc->restart_at_ms
				      : svc->pid && !svc->announced ? svc->started_ms + SERVICE_RUNNING_MS : -1;
			if (due >= 0 && due - now < wait_ms)
				wait_ms = due > now ? due - now : 0;
		}
		if (poll(fds, nfds, (int)wait_ms) > 0)
			for (nfds_t f = 1; f < nfds; f++)
				if (fds[f].revents)
					read_notification(notifying[f]);
	}
}
