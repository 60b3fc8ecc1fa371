#!/bin/busybox sh
# The systemd boot's /init (xtask/src/vmtest/systemd_boot.rs). The kernel unpacked the
# initramfs into rootfs, which pivot_root cannot leave, and runc pivots into every container's
# root: copy the root onto a tmpfs, then start systemd there (switch_root frees the rootfs).
bb=/bin/busybox
$bb mkdir -p /newroot
$bb mount -t tmpfs -o mode=0755 tmpfs /newroot || exit 1
for entry in /*; do
    if [ "$entry" != /newroot ] && [ "$entry" != /init ]; then
        $bb cp -a "$entry" /newroot/ || exit 1
    fi
done
exec $bb switch_root /newroot /lib/systemd/systemd
