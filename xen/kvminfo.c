/* Host facts for `xl info`: what this host's KVM can do. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/kvm.h>
#include "tandem/xen.h"

int kvm_host_query(struct kvm_host_info *info, const struct tlog *log)
{
    memset(info, 0, sizeof(*info));
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        tlog_error(log, "cannot open /dev/kvm: %s", strerror(err));
        return -err;
    }
    info->api_version = ioctl(fd, KVM_GET_API_VERSION, 0);
    info->max_vcpus = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
    info->nr_vcpus_recommended = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
    info->nr_memslots = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
    info->irqchip = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQCHIP) > 0;
    info->pit2 = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_PIT2) > 0;
    info->tsc_control = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_CONTROL) > 0;
    info->immediate_exit = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_IMMEDIATE_EXIT) > 0;
    info->xsave = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0;
    info->xcrs = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;
    info->manual_dirty_protect = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) > 0;
    /* The dirty ring is a per-VM capability: ask a scratch VM. */
    int vm = ioctl(fd, KVM_CREATE_VM, 0);
    if (vm >= 0) {
        int r = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_DIRTY_LOG_RING);
        info->dirty_ring_max_bytes = r > 0 ? r : 0;
        info->dirty_ring_acq_rel = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_DIRTY_LOG_RING_ACQ_REL) > 0;
        int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
        if (vcpu >= 0) {
            int khz = ioctl(vcpu, KVM_GET_TSC_KHZ, 0);
            info->tsc_khz = khz > 0 ? (unsigned)khz : 0;
            close(vcpu);
        }
        close(vm);
    }
    close(fd);
    return 0;
}
