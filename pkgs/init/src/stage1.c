/*
 * Stage 1, from the initramfs: the kernel filesystems, rootfs.sqsh on a loop device (under an overlay of the
 * extension layers when there are any), /run /tmp /system, /var, then switch_root to stage 2.
 */
#define _GNU_SOURCE
#include "init.h"

/* musl ships no <linux/loop.h>; these match the kernel's UAPI. */
#define LOOP_CTL_GET_FREE 0x4C82
#define LOOP_CONFIGURE 0x4C0A
#define LO_FLAGS_READ_ONLY 1
#define LO_FLAGS_AUTOCLEAR 4
#define LO_NAME_SIZE 64
#define LO_KEY_SIZE 32

struct loop_info64 {
	uint64_t lo_device, lo_inode, lo_rdevice, lo_offset, lo_sizelimit;
	uint32_t lo_number, lo_encrypt_type, lo_encrypt_key_size, lo_flags;
	uint8_t lo_file_name[LO_NAME_SIZE];
	uint8_t lo_crypt_name[LO_NAME_SIZE];
	uint8_t lo_encrypt_key[LO_KEY_SIZE];
	uint64_t lo_init[2];
};

struct loop_config {
	uint32_t fd;
	uint32_t block_size;
	struct loop_info64 info;
	uint64_t reserved[8];
};

#define EXTENSIONS_DIR "/extensions"
#define LAYERS_DIR "/layers"
#define VAR_PARTITION_NAME "var"
#define MKE2FS "/usr/sbin/mke2fs"
#define EXT4_MAGIC_OFFSET (1024 + 56)
#define NEW_ROOT "/newroot"
#define STAGE2 "/sbin/init"

static void use_console(void)
{
	int fd = open("/dev/console", O_RDWR | O_NOCTTY);
	if (fd < 0)
		return;
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
}

/* Attaches the image read-only to a free loop device; returns its path. */
static const char *attach_loop(const char *image)
{
	static char dev[32];
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		fatal("open /dev/loop-control");
	int n = ioctl(ctl, LOOP_CTL_GET_FREE);
	if (n < 0)
		fatal("LOOP_CTL_GET_FREE");
	close(ctl);
	snprintf(dev, sizeof(dev), "/dev/loop%d", n);

	int img = open(image, O_RDONLY | O_CLOEXEC);
	if (img < 0)
		fatal(image);
	int loop = open(dev, O_RDONLY | O_CLOEXEC);
	if (loop < 0)
		fatal(dev);
	struct loop_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.fd = (uint32_t)img;
	cfg.info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR;
	strncpy((char *)cfg.info.lo_file_name, image, LO_NAME_SIZE - 1);
	if (ioctl(loop, LOOP_CONFIGURE, &cfg) < 0)
		fatal("LOOP_CONFIGURE");
	/* the mount holds the device; with AUTOCLEAR it detaches when unmounted */
	return dev;
}

/* The block device whose uevent has the line `property` (e.g. PARTNAME=var), from sysfs; NULL when none has. */

enum var_content { VAR_EXT4, VAR_EMPTY, VAR_OTHER };

/* ext4 (superblock magic), empty (its first 64 KiB all zero) or something else, never to be formatted over. */
static enum var_content var_content(const char *dev)
{
	static unsigned char head[65536];
	int fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fatal(dev);
	ssize_t n = pread(fd, head, sizeof(head), 0);
	close(fd);
	if (n != (ssize_t)sizeof(head))
		fatal("read the var partition");
	if (head[EXT4_MAGIC_OFFSET] == 0x53 && head[EXT4_MAGIC_OFFSET + 1] == 0xEF)
		return VAR_EXT4;
	for (size_t i = 0; i < sizeof(head); i++)
		if (head[i])
			return VAR_OTHER;
	return VAR_EMPTY;
}

/* Runs the image's mke2fs (static, from the new root) on the partition. */
static void format_var(const char *dev)
{
	if (access(NEW_ROOT MKE2FS, X_OK) < 0)
		fatal("the var partition is empty and this image has no " MKE2FS " to format it (add the e2fsprogs package)");
	pid_t pid = fork();
	if (pid < 0)
		fatal("fork");
	if (pid == 0) {
		char *const argv[] = { "mke2fs", "-q", "-t", "ext4", "-L", VAR_PARTITION_NAME,
				       "-E", "root_owner=0:0", (char *)dev, NULL };
		execv(NEW_ROOT MKE2FS, argv);
		_exit(127);
	}
	int status;
	if (waitpid(pid, &status, 0) < 0)
		fatal("wait for mke2fs");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		errno = EIO;
		fatal("mke2fs on the var partition");
	}
}

/* /var: the data partition when the disk has one (formatted on first boot), else a tmpfs. */
static void mount_var(void)
{
	const char *dev = find_partition("PARTNAME=" VAR_PARTITION_NAME);
	if (!dev) {
		mount_or_die("tmpfs", NEW_ROOT "/var", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
		return;
	}
	switch (var_content(dev)) {
	case VAR_OTHER:
		errno = EEXIST;
		fatal("the var partition holds data that is not ext4; not formatting it");
	case VAR_EMPTY:
		format_var(dev);
		say("var %s formatted ext4 (first boot)", dev);
		break;
	case VAR_EXT4:
		break;
	}
	mount_or_die(dev, NEW_ROOT "/var", "ext4", MS_NOSUID | MS_NODEV, NULL);
	say("var %s mounted ext4", dev);
}

static int sqsh_file(const struct dirent *entry)
{
	return has_suffix(entry->d_name, ".sqsh");
}

/* An extension image's file name: [A-Za-z0-9._-] ending .sqsh, whose layer directory is new under LAYERS_DIR. */
static int valid_extension_name(const char *file)
{
	size_t len = strlen(file);
	if (!has_suffix(file, ".sqsh"))
		return 0;
	if (strspn(file, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != len)
		return 0;
	size_t stem = len - 5;
	return !(stem == 1 && file[0] == '.') && !(stem == 2 && strncmp(file, "..", 2) == 0) &&
	       !(stem == 4 && strncmp(file, "base", 4) == 0);
}

/* The overlay's lowerdir option: the extensions' layers, the last name first (overlayfs lists the top first), then the base. */
static int overlay_lowerdirs(char *out, size_t size, struct dirent *const *files, int count)
{
	out[0] = '\0';
	if (!append(out, size, "lowerdir="))
		return 0;
	for (int i = count - 1; i >= 0; i--)
		if (!append(out, size, LAYERS_DIR "/%.*s:", (int)strlen(files[i]->d_name) - 5, files[i]->d_name))
			return 0;
	return append(out, size, LAYERS_DIR "/base");
}

/* Mounts a SquashFS image read-only on LAYERS_DIR/NAME through a loop device of its own. */
static void mount_layer(const char *image, const char *name, int name_len)
{
	char dir[320];
	snprintf(dir, sizeof(dir), LAYERS_DIR "/%.*s", name_len, name);
	make_dir(dir);
	mount_or_die(attach_loop(image), dir, "squashfs", MS_RDONLY | MS_NODEV, NULL);
}

/* The new root: the base image, or a read-only overlay of it and of the extension images when the initramfs has some. */
static void mount_root(void)
{
	make_dir(NEW_ROOT);
	struct dirent **files;
	int count = scandir(EXTENSIONS_DIR, &files, sqsh_file, alphasort);
	if (count < 0 && errno != ENOENT)
		fatal("scan " EXTENSIONS_DIR);
	if (count <= 0) {
		if (count == 0)
			free(files);
		mount_or_die(attach_loop(ROOTFS_IMAGE), NEW_ROOT, "squashfs", MS_RDONLY | MS_NODEV, NULL);
		return;
	}
	for (int i = 0; i < count; i++) {
		if (!valid_extension_name(files[i]->d_name)) {
			static char what[320];
			snprintf(what, sizeof(what), "extension image name %s (A-Z a-z 0-9 . _ - only, not base.sqsh)",
				 files[i]->d_name);
			errno = EINVAL;
			fatal(what);
		}
	}
	static char options[4096];
	if (!overlay_lowerdirs(options, sizeof(options), files, count)) {
		errno = E2BIG;
		fatal("overlay lowerdir option (too many or too long extension names)");
	}
	make_dir(LAYERS_DIR);
	mount_layer(ROOTFS_IMAGE, "base", 4);
	for (int i = 0; i < count; i++) {
		char image[320];
		const char *file = files[i]->d_name;
		int stem = (int)strlen(file) - 5;
		snprintf(image, sizeof(image), EXTENSIONS_DIR "/%s", file);
		mount_layer(image, file, stem);
		say("extension layer %.*s mounted", stem, file);
	}
	/* no upperdir: the overlay is read-only like its layers */
	mount_or_die("overlay", NEW_ROOT, "overlay", MS_RDONLY | MS_NODEV, options);
	say("root is an overlay of the base and %d extension layer(s)", count);
	for (int i = 0; i < count; i++)
		free(files[i]);
	free(files);
}

void __attribute__((noreturn)) stage1(void)
{
	make_dir("/dev");
	make_dir("/proc");
	make_dir("/sys");
	mount_or_die("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	use_console();
	mount_or_die("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_or_die("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	measure_phase("enter-initrd");

	mount_root();

	static const char *const tmpfs_dirs[] = { "run", "tmp", "system" };
	for (size_t i = 0; i < sizeof(tmpfs_dirs) / sizeof(tmpfs_dirs[0]); i++) {
		char target[64];
		snprintf(target, sizeof(target), NEW_ROOT "/%s", tmpfs_dirs[i]);
		const char *mode = strcmp(tmpfs_dirs[i], "tmp") == 0 ? "mode=1777" : "mode=0755";
		mount_or_die("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, mode);
	}
	mount_var();
	measure_phase("leave-initrd");
	mount_or_die("/dev", NEW_ROOT "/dev", NULL, MS_MOVE, NULL);
	mount_or_die("/proc", NEW_ROOT "/proc", NULL, MS_MOVE, NULL);
	mount_or_die("/sys", NEW_ROOT "/sys", NULL, MS_MOVE, NULL);

	/* the initramfs is the rootfs and cannot be pivoted away: move over it */
	if (chdir(NEW_ROOT) < 0)
		fatal("chdir " NEW_ROOT);
	mount_or_die(".", "/", NULL, MS_MOVE, NULL);
	if (chroot(".") < 0)
		fatal("chroot");
	if (chdir("/") < 0)
		fatal("chdir /");

	char *const argv[] = { STAGE2, NULL };
	execv(STAGE2, argv);
	fatal("exec " STAGE2);
}
