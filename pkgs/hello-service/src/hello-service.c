/*
 * hello-service: the example service of the hello extension. It says it
 * started, then ticks on its standard output every INTERVAL seconds, so that
 * a boot test sees it run under init's supervision.
 *   hello-service [--interval SECONDS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	unsigned interval = 5;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
			interval = (unsigned)strtoul(argv[++i], NULL, 10);
		} else {
			fprintf(stderr, "hello-service: unknown argument '%s'; usage: hello-service [--interval SECONDS]\n", argv[i]);
			return 2;
		}
	}
	if (interval == 0)
		interval = 1;
	printf("hello-service: started pid=%d interval=%us\n", (int)getpid(), interval);
	fflush(stdout);
	for (unsigned long tick = 1;; tick++) {
		sleep(interval);
		printf("hello-service: tick %lu\n", tick);
		fflush(stdout);
	}
}
