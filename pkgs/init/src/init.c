/*
 * bronze init: PID 1 of a bronze image, in two stages.
 *
 * Stage 1 runs from the initramfs (/init, next to /rootfs.sqsh): it mounts the
 * kernel filesystems, attaches rootfs.sqsh to a loop device and mounts it
 * read-only as the new root; when the initramfs also holds extension images
 * (/extensions/NAME.sqsh), it mounts the base and each extension read-only on
 * /layers/base and /layers/NAME and makes the new root a read-only overlay of
 * them, the extensions in name order over the base (the last name on top). It
 * then mounts tmpfs on /run /tmp /system, mounts /var (the GPT partition named
 * "var", formatted ext4 with the image's mke2fs on first boot when it is
 * empty; tmpfs when there is none), switches root and execs /sbin/init from it.
 *
 * Stage 2 runs from the read-only root: it loads the modules the command line
 * names (bronze.modules=ITEM,ITEM: a path, or a module name resolved with its
 * dependencies through modules.dep), then those the .conf files of
 * /usr/lib/modules-load.d name, reporting each result, applies the sysctl
 * settings of the .conf files in /usr/lib/sysctl.d (after the modules: one of
 * them may be kernel.modules_disabled=1), checks what it promises (root is
 * read-only, /var is writable), counts boots in /var/lib/bronze/boot-count,
 * marks the boot good for systemd-boot's boot counting (drops the +LEFT-DONE
 * counter from the name of the UKI it came from), starts the services defined
 * in /usr/lib/bronze/services, prints one machine-readable status line (with
 * PCR 11 when there is a TPM: each stage measures its boot phases), and
 * then supervises the services (restarting them as their policy says) and
 * reaps orphans forever, or powers off when the command line has
 * bronze.poweroff=1 (used by tests).
 *
 * The parts: stage1.c, modules.c, sysctl.c, boot.c, measure.c and services.c by concern, common.c for what they share
 * (init.h), parse.c for the parsers (pure; built for the host too, by test/pkgs/init.test.ts), and
 * service-format.h for what init and bronze's build agree on.
 */
#define _GNU_SOURCE
#include "init.h"

static int root_is_read_only(void)
{
	struct statvfs st;
	if (statvfs("/", &st) < 0)
		return 0;
	int fd = open("/.bronze-write-probe", O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd >= 0) {
		close(fd);
		unlink("/.bronze-write-probe");
		return 0;
	}
	return (st.f_flag & ST_RDONLY) && errno == EROFS;
}

static int var_is_writable(void)
{
	static const char probe[] = "/var/.bronze-write-probe";
	static const char data[] = "bronze";
	char back[sizeof(data)];
	int fd = open(probe, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return 0;
	int ok = write(fd, data, sizeof(data)) == (ssize_t)sizeof(data) &&
		 pread(fd, back, sizeof(back), 0) == (ssize_t)sizeof(back) &&
		 memcmp(back, data, sizeof(data)) == 0;
	close(fd);
	unlink(probe);
	return ok;
}

static void __attribute__((noreturn)) stage2(void)
{
	measure_phase("sysinit");
	load_modules(cmdline_value("bronze.modules"));
	apply_sysctl();
	struct statfs var_fs;
	const char *var_type = statfs("/var", &var_fs) == 0 && var_fs.f_type == EXT4_SUPER_MAGIC ? "ext4" : "tmpfs";
	int root_ro = root_is_read_only();
	int var_rw = var_is_writable();
	unsigned long boots = var_rw ? count_boot() : 0UL;
	/* what this boot promises holds: it is a good boot */
	if (root_ro && var_rw)
		bless_boot();
	int started = start_services();
	measure_phase("ready");
	const char *pcr = pcr11();
	printf(READY_LINE " root=%s var=%s varfs=%s boots=%lu version=%s services=%d%s%s\n", root_ro ? "ro" : "rw",
	    var_rw ? "rw" : "ro", var_type, boots, image_version(), started, pcr ? " pcr11=" : "", pcr ? pcr : "");
	fflush(stdout);
	if (cmdline_has("bronze.poweroff=1")) {
		say("powering off");
		power_off();
		fatal("reboot(RB_POWER_OFF)");
	}
	supervise();
}

int main(void)
{
	if (getpid() != 1) {
		fprintf(stderr, "bronze init: must run as PID 1 (the kernel starts it)\n");
		return 2;
	}
	if (access(ROOTFS_IMAGE, F_OK) == 0)
		stage1();
	stage2();
}
