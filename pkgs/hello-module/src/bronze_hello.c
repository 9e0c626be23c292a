// SPDX-License-Identifier: GPL-2.0-only
/* An out-of-tree module: built against the kernel tree and signed with the
 * build's ephemeral key, like every in-tree module. */
#include <linux/init.h>
#include <linux/module.h>

static int __init bronze_hello_init(void)
{
	pr_info("bronze_hello: loaded\n");
	return 0;
}

static void __exit bronze_hello_exit(void)
{
	pr_info("bronze_hello: unloaded\n");
}

module_init(bronze_hello_init);
module_exit(bronze_hello_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("bronze example out-of-tree module");
