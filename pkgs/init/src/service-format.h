/*
 * The service files init reads and the line it prints when the system is up: defined here for init, and
 * in src/extensions/services.ts (which writes the files) and src/boot/qemu.ts (which waits for the line)
 * for bronze; test/pkgs/init.test.ts holds the three to the same values.
 */
#ifndef BRONZE_SERVICE_FORMAT_H
#define BRONZE_SERVICE_FORMAT_H

#define SERVICES_DIR "/usr/lib/bronze/services"
#define SERVICE_SUFFIX ".service"
#define MAX_SERVICES 16
#define MAX_SERVICE_NAME 63
#define MAX_SERVICE_ARGS 32
/* bytes of the command path, and of all arguments with a NUL after each */
#define MAX_SERVICE_COMMAND 255
#define MAX_SERVICE_ARGS_BYTES 4096
/* the syscalls of an allow-list, writable paths and dependencies a definition may name */
#define MAX_SERVICE_SYSCALLS 512
#define MAX_SERVICE_WRITABLE 8
#define MAX_SERVICE_AFTER 8
/* a service with ready=notify writes a line on this descriptor when it is ready (as s6's notification-fd) */
#define SERVICE_NOTIFY_FD 3
#define READY_LINE "bronze: ready"

#endif
