/* A QEMU TCG plugin that counts the guest instructions a user-mode program executes and prints the
 * total to stderr at exit: `qemu-aarch64 -plugin ./insn_count.so prog`. Used by bench/camera_estimate.sh
 * to count the instructions of Vigil's per-frame CPU path as an arm64 core would execute them.
 *
 * Written against QEMU 7.2's plugin interface (QEMU_PLUGIN_VERSION 1, Debian bookworm's qemu-user);
 * the few declarations it needs are restated here so no QEMU source tree is needed to build it:
 *   cc -shared -fPIC -O2 -o insn_count.so insn_count.c
 * Threads add to one counter without locking: with OpenCV and OpenBLAS at one thread the guest
 * program runs its frame work on one thread, so the count is exact for it. */
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_info_t;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*tb_trans_cb)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*udata_cb)(qemu_plugin_id_t id, void *userdata);

extern void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, tb_trans_cb cb);
extern size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
extern void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
                                                     void *ptr, uint64_t imm);
extern void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, udata_cb cb, void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t executed;

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    /* every time this block runs, add its instruction count: an add in the generated code, no call */
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &executed,
                                             qemu_plugin_tb_n_insns(tb));
}

static void on_exit(qemu_plugin_id_t id, void *userdata)
{
    fprintf(stderr, "guest instructions: %llu\n", (unsigned long long)executed);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const struct qemu_info_t *info,
                                                               int argc, char **argv)
{
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_exit, NULL);
    return 0;
}
