/* Boot counting in /var, and the boot marked good for systemd-boot's boot counting. */
#define _GNU_SOURCE
#include "init.h"

#define BOOT_COUNT_FILE "/var/lib/bronze/boot-count"

#define EFIVARS "/sys/firmware/efi/efivars"
#define LOADER_GUID "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"
#define ESP_MOUNT "/run/bronze/esp"
#define ESP_PARTITION_NAME "ESP"

/* An EFI variable of systemd-boot's holding a UTF-16 string, as ASCII (what it holds here); 0 when absent. */
static int read_loader_string(const char *name, char *out, size_t size)
{
	char path[256];
	unsigned char raw[1024];
	snprintf(path, sizeof(path), EFIVARS "/%s-" LOADER_GUID, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, raw, sizeof(raw));
	close(fd);
	size_t len = 0;
	/* 4 bytes of attributes, then UTF-16LE up to a NUL */
	for (ssize_t i = 4; i + 1 < n && len + 1 < size; i += 2) {
		if (raw[i] == 0 && raw[i + 1] == 0)
			break;
		out[len++] = raw[i + 1] ? '?' : (char)raw[i];
	}
	out[len] = '\0';
	return len > 0;
}

/*
 * Boot counting (systemd-boot's +LEFT-DONE file names): the UKI this boot came from was
 * renamed by the boot loader to count the try; once this boot is good, drop the counter from
 * its name so that it stays the default, as systemd-bless-boot does.
 */
void bless_boot(void)
{
	char counted[256];
	if (access("/sys/firmware/efi", F_OK) < 0)
		return;
	if (mount("efivarfs", EFIVARS, "efivarfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 && errno != EBUSY) {
		say("boot counting: cannot mount efivarfs: %s", strerror(errno));
		return;
	}
	if (!read_loader_string("LoaderBootCountPath", counted, sizeof(counted)))
		return; /* the entry has no counter: nothing to bless */
	for (char *c = counted; *c; c++)
		if (*c == '\\')
			*c = '/';
	/* the kernel's uevents name partitions but carry no partition UUID: find the ESP by its GPT name */
	const char *esp = find_partition("PARTNAME=" ESP_PARTITION_NAME);
	/* .../NAME+LEFT[-DONE].efi -> .../NAME.efi */
	char blessed[256];
	char *plus = strrchr(counted, '+');
	char *slash = strrchr(counted, '/');
	if (!esp || !plus || (slash && plus < slash)) {
		say("boot counting: cannot bless %s (partition %s)", counted, esp ? esp : "not found");
		return;
	}
	snprintf(blessed, sizeof(blessed), "%.*s.efi", (int)(plus - counted), counted);
	if (mkdir("/run/bronze", 0700) < 0 && errno != EEXIST)
		return;
	if (mkdir(ESP_MOUNT, 0700) < 0 && errno != EEXIST)
		return;
	if (mount(esp, ESP_MOUNT, "vfat", MS_NOSUID | MS_NODEV | MS_NOEXEC, "umask=0077") < 0) {
		say("boot counting: cannot mount the ESP %s: %s", esp, strerror(errno));
		return;
	}
	char from[320], to[320];
	snprintf(from, sizeof(from), ESP_MOUNT "%s", counted);
	snprintf(to, sizeof(to), ESP_MOUNT "%s", blessed);
	if (rename(from, to) == 0)
		say("boot counting: %s is good, now %s", counted, blessed);
	else
		say("boot counting: rename %s failed: %s", counted, strerror(errno));
	/* unmounting writes the FAT out: the rename survives a power cut from here on */
	if (umount(ESP_MOUNT) < 0)
		say("boot counting: unmount the ESP: %s", strerror(errno));
	sync();
}

/* VERSION_ID of the running image, for the ready line. */
const char *image_version(void)
{
	static char version[64] = "unknown";
	FILE *file = fopen("/usr/lib/os-release", "re");
	if (!file)
		file = fopen("/etc/os-release", "re");
	if (!file)
		return version;
	char line[256];
	while (fgets(line, sizeof(line), file)) {
		if (strncmp(line, "VERSION_ID=", 11) == 0) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(version, sizeof(version), "%.63s", line + 11);
		}
	}
	fclose(file);
	return version;
}

/* Counts this boot in /var (kept across boots when /var is a disk partition); 0 when it cannot. */
unsigned long count_boot(void)
{
	unsigned long count = 0;
	FILE *file = fopen(BOOT_COUNT_FILE, "re");
	if (file) {
		if (fscanf(file, "%lu", &count) != 1)
			count = 0;
		fclose(file);
	}
	count++;
	if (mkdir("/var/lib", 0755) < 0 && errno != EEXIST)
		return 0;
	if (mkdir("/var/lib/bronze", 0755) < 0 && errno != EEXIST)
		return 0;
	file = fopen(BOOT_COUNT_FILE ".new", "we");
	if (!file)
		return 0;
	int ok = fprintf(file, "%lu\n", count) > 0 && fflush(file) == 0 && fsync(fileno(file)) == 0;
	ok = fclose(file) == 0 && ok;
	if (!ok || rename(BOOT_COUNT_FILE ".new", BOOT_COUNT_FILE) < 0)
		return 0;
	/* the rename is durable only once its directory is synced: a machine may be cut off any time */
	int dir = open("/var/lib/bronze", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return 0;
	ok = fsync(dir) == 0;
	close(dir);
	return ok ? count : 0;
}
