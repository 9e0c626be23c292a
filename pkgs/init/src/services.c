/* The services of /usr/lib/bronze/services: started in name order, restarted as their policy says, orphans reaped. */
#define _GNU_SOURCE
#include "init.h"

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
		if (reason)
			say("service %s invalid: %s", file, reason);
		else
			service_count++;
		free(files[i]);
	}
	free(files);
}

/* The process ended (or never started): restart it after its backoff, or leave it stopped, as its policy says. */
static void service_ended(struct service *svc, int failed)
{
	int64_t now = now_ms();
	int64_t lived = now - svc->started_ms;
	svc->pid = 0;
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

/* Forks and execs a service in a session of its own, stdin from /dev/null, stdout and stderr on the console. */
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
	pid_t pid = fork();
	if (pid < 0) {
		say("service %s cannot fork: %s", svc->name, strerror(errno));
		service_ended(svc, 1);
		return 0;
	}
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setsid();
		int null = open("/dev/null", O_RDONLY);
		if (null != 0) {
			if (null < 0 || dup2(null, 0) < 0)
				close(0);
			if (null > 0)
				close(null);
		}
		if (chdir("/") == 0)
			execv(svc->command, argv);
		say("service %s cannot exec %s: %s", svc->name, svc->command, strerror(errno));
		_exit(127);
	}
	svc->pid = pid;
	say("service %s started pid=%d", svc->name, (int)pid);
	return 1;
}

/* Starts every service; returns how many started. */
int start_services(void)
{
	int started = 0;
	read_services();
	for (int i = 0; i < service_count; i++)
		started += start_service(&services[i]);
	return started;
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
			if (WIFEXITED(status))
				say("service %s exited status=%d", svc->name, WEXITSTATUS(status));
			else
				say("service %s killed by signal %d", svc->name, WTERMSIG(status));
			service_ended(svc, !WIFEXITED(status) || WEXITSTATUS(status) != 0);
			break;
		}
	}
}

/* PID 1's last duty, forever: reap, restart the services that are due, and say which have come up. */
void __attribute__((noreturn)) supervise(void)
{
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	/* blocked, SIGCHLD stays pending for PID 1 (unblocked, PID 1 ignores it): it ends the wait below */
	sigprocmask(SIG_BLOCK, &chld, NULL);
	for (;;) {
		reap();
		int64_t now = now_ms(), wait_ms = 1000;
		for (int i = 0; i < service_count; i++) {
			struct service *svc = &services[i];
			if (svc->restart_pending && now >= svc->restart_at_ms)
				start_service(svc);
			if (svc->pid && !svc->announced && now - svc->started_ms >= SERVICE_RUNNING_MS) {
				svc->announced = 1;
				say("service %s running pid=%d", svc->name, (int)svc->pid);
			}
			int64_t due = svc->restart_pending ? svc->restart_at_ms
				      : svc->pid && !svc->announced ? svc->started_ms + SERVICE_RUNNING_MS : -1;
			if (due >= 0 && due - now < wait_ms)
				wait_ms = due > now ? due - now : 0;
		}
		struct timespec timeout = { .tv_sec = (time_t)(wait_ms / 1000), .tv_nsec = (long)(wait_ms % 1000) * 1000000 };
		sigtimedwait(&chld, NULL, &timeout);
	}
}
