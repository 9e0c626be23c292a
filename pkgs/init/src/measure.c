/*
 * Measured boot: init extends PCR 11 with systemd's boot-phase words (what systemd-pcrphase does), so a
 * UKI's .pcrsig, signed for those phases, holds on a bronze system too: a secret sealed to the signed
 * policy of "enter-initrd" unseals in stage 1 and no longer once stage 1 has left.
 *
 * TPM2_PCR_Event hands the word to the TPM, which extends every active bank with that bank's hash of it:
 * the same value systemd-pcrphase extends (it hashes in software, then extends each bank).
 */
#define _GNU_SOURCE
#include "init.h"

#define TPM_DEVICE "/dev/tpmrm0"
#define PCR_SHA256_11 "/sys/class/tpm/tpm0/pcr-sha256/11"
#define TPM_ST_SESSIONS 0x8002
#define TPM_CC_PCR_EVENT 0x0000013C
#define TPM_RS_PW 0x40000009
#define PCR_KERNEL_IMAGE 11

static size_t put_u16(uint8_t *at, uint16_t v)
{
	at[0] = (uint8_t)(v >> 8);
	at[1] = (uint8_t)v;
	return 2;
}

static size_t put_u32(uint8_t *at, uint32_t v)
{
	put_u16(at, (uint16_t)(v >> 16));
	put_u16(at + 2, (uint16_t)v);
	return 4;
}

/* The TPM2_PCR_Event command for one word, with an empty password session; returns its length. */
static size_t pcr_event_command(uint8_t *cmd, const char *word)
{
	size_t len = strlen(word);
	size_t n = put_u16(cmd, TPM_ST_SESSIONS);
	n += 4; /* the size, once known */
	n += put_u32(cmd + n, TPM_CC_PCR_EVENT);
	n += put_u32(cmd + n, PCR_KERNEL_IMAGE);
	n += put_u32(cmd + n, 9); /* the authorization area: handle, empty nonce, attributes, empty hmac */
	n += put_u32(cmd + n, TPM_RS_PW);
	n += put_u16(cmd + n, 0);
	cmd[n++] = 0;
	n += put_u16(cmd + n, 0);
	n += put_u16(cmd + n, (uint16_t)len);
	memcpy(cmd + n, word, len);
	n += len;
	put_u32(cmd + 2, (uint32_t)n);
	return n;
}

void measure_phase(const char *word)
{
	int fd = open(TPM_DEVICE, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return; /* no TPM: nothing is measured, and nothing claims it was */
	uint8_t cmd[64], rsp[256];
	size_t n = pcr_event_command(cmd, word);
	ssize_t got = write(fd, cmd, n) == (ssize_t)n ? read(fd, rsp, sizeof(rsp)) : -1;
	close(fd);
	uint32_t rc = got >= 10 ? (uint32_t)rsp[6] << 24 | (uint32_t)rsp[7] << 16 | (uint32_t)rsp[8] << 8 | rsp[9] : 0;
	if (got < 10 || rc != 0)
		say("measuring boot phase %s into PCR %d failed (TPM response code 0x%x)", word, PCR_KERNEL_IMAGE, rc);
}

const char *pcr11(void)
{
	static char hex[65];
	int fd = open(PCR_SHA256_11, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	ssize_t got = read(fd, hex, 64);
	close(fd);
	if (got != 64)
		return NULL;
	hex[64] = '\0';
	for (int i = 0; i < 64; i++)
		hex[i] = (char)tolower((unsigned char)hex[i]);
	return hex;
}
