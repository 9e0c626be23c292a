// SPDX-License-Identifier: GPL-2.0-only
/* The hello extension's module: built and signed by the kernel job, shipped in
 * the extension's layer, not the base rootfs. It calls into crc-ccitt.ko, so
 * loading it by name needs the module dependency data the build regenerates. */
#include <linux/crc-ccitt.h>
#include <linux/init.h>
#include <linux/module.h>

static int __init bronze_ext_init(void)
{
	static const u8 word[] = "bronze";
	pr_info("bronze_ext: loaded, crc_ccitt(bronze)=0x%04x\n", crc_ccitt(0, word, sizeof(word) - 1));
	return 0;
}

static void __exit bronze_ext_exit(void)
{
	pr_info("bronze_ext: unloaded\n");
}

module_init(bronze_ext_init);
module_exit(bronze_ext_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("bronze example extension module");
