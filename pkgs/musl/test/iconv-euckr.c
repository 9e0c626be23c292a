/* CVE-2025-26519: EUC-KR input whose lead byte is past the table ("\xc8\x41", the upstream fix's example)
 * must be an encoding error, not a read beyond the ksc table. Prints what iconv said. */
#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
	iconv_t cd = iconv_open("UTF-8", "EUC-KR");
	if (cd == (iconv_t)-1) {
		perror("iconv_open");
		return 2;
	}
	char input[] = "\xc8\x41";
	char output[16];
	char *in = input, *out = output;
	size_t inleft = 2, outleft = sizeof output;
	size_t done = iconv(cd, &in, &inleft, &out, &outleft);
	if (done == (size_t)-1 && errno == EILSEQ) {
		puts("EILSEQ");
		return 0;
	}
	printf("converted %zu bytes of output, iconv returned %zd (errno %d)\n", sizeof output - outleft, (ssize_t)done, errno);
	return 1;
}
