/* What the parts of init share: the headers, the paths both stages use, and the functions of common.c. */
#ifndef BRONZE_INIT_H
#define BRONZE_INIT_H

#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "parse.h"

#define EXT4_SUPER_MAGIC 0xEF53
#define ROOTFS_IMAGE "/rootfs.sqsh"

/* common.c: the console, the command line, mounts, small string helpers */
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *cmdline_value(const char *key);
int cmdline_has(const char *key_value);
void power_off(void);
void __attribute__((noreturn)) fatal(const char *step);
void make_dir(const char *path);
void mount_or_die(const char *src, const char *target, const char *type, unsigned long flags, const char *data);
int has_suffix(const char *name, const char *suffix);
int __attribute__((format(printf, 3, 4))) append(char *buf, size_t size, const char *fmt, ...);
int conf_file(const struct dirent *entry);
const char *find_partition(const char *property);

/* stage1.c: from the initramfs to the read-only root */
void __attribute__((noreturn)) stage1(void);

/* modules.c, sysctl.c: what stage 2 loads and applies first */
void load_modules(const char *list);
void apply_sysctl(void);

/* boot.c: boot counting, and telling systemd-boot the boot was good */
void bless_boot(void);
const char *image_version(void);
unsigned long count_boot(void);

/* measure.c: the boot phases measured into PCR 11 (none without a TPM), and PCR 11's sha256 value (NULL then) */
void measure_phase(const char *word);
const char *pcr11(void);

/* confine.c: a service's cgroup, namespaces, credentials and syscall filter */
void setup_cgroups(void);
const char *confinement_problem(const struct service *svc);
int syscall_number(const char *name);
pid_t spawn_confined(struct service *svc, char *const argv[]);
uint64_t oom_kills(const struct service *svc);

/* services.c: the services and their supervision */
int start_services(void);
void __attribute__((noreturn)) supervise(void);

#endif
