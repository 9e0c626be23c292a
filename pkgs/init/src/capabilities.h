/*
 * The capabilities a service may keep, by number (capabilities(7), Linux 6.12), as service files name
 * them; src/extensions/services.ts has the same list for bronze (test/pkgs/init.test.ts holds the two equal).
 */
#ifndef BRONZE_CAPABILITIES_H
#define BRONZE_CAPABILITIES_H

static const char *const CAPABILITY_NAMES[] = {
	"chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid",
	"setpcap", "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw",
	"ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct",
	"sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time", "sys_tty_config", "mknod",
	"lease", "audit_write", "audit_control", "setfcap", "mac_override", "mac_admin", "syslog",
	"wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
};
#define CAPABILITY_COUNT ((int)(sizeof(CAPABILITY_NAMES) / sizeof(CAPABILITY_NAMES[0])))

#endif
