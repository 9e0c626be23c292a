/* Stage 2's sysctl settings: every .conf of /usr/lib/sysctl.d in name order, as systemd-sysctl would. */
#define _GNU_SOURCE
#include "init.h"

#define SYSCTL_DIR "/usr/lib/sysctl.d"

struct sysctl_tally {
	int applied, absent, failed;
};

/* Writes one "key = value" setting to /proc/sys; a key written "-key" may be absent from this kernel. */
static void apply_sysctl_line(char *line, struct sysctl_tally *tally)
{
	struct sysctl_setting setting;
	if (!parse_sysctl_line(line, &setting))
		return;
	const char *key = setting.key, *value = setting.value;
	int fd = open(setting.path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		if (setting.optional) {
			tally->absent++;
		} else {
			say("sysctl %s not in this kernel", key);
			tally->failed++;
		}
		return;
	}
	if (fd < 0 || write(fd, value, strlen(value)) < 0) {
		say("sysctl %s=%s failed: %s", key, value, strerror(errno));
		tally->failed++;
	} else {
		tally->applied++;
	}
	if (fd >= 0)
		close(fd);
}

/* Applies every *.conf of SYSCTL_DIR in name order, as systemd-sysctl would, and reports the tally. */
void apply_sysctl(void)
{
	struct dirent **files;
	int count = scandir(SYSCTL_DIR, &files, conf_file, alphasort);
	if (count < 0)
		return;
	struct sysctl_tally tally = { 0, 0, 0 };
	for (int i = 0; i < count; i++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", SYSCTL_DIR, files[i]->d_name);
		FILE *conf = fopen(path, "re");
		if (conf) {
			char line[512];
			while (fgets(line, sizeof(line), conf))
				apply_sysctl_line(line, &tally);
			fclose(conf);
		} else {
			say("sysctl %s unreadable: %s", path, strerror(errno));
			tally.failed++;
		}
		free(files[i]);
	}
	free(files);
	say("sysctl applied=%d absent=%d failed=%d", tally.applied, tally.absent, tally.failed);
}
