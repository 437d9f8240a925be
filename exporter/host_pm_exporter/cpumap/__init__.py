"""libvirt's CPU map, read as data, and libvirt's way of naming a host CPU with it.

- `loader`: reads a ``cpu_map`` directory (the host's ``/usr/share/libvirt/cpu_map``
  when it has one, else the copy packed in ``data/cpu_map``, see ``data/PROVENANCE.md``).
- `linux_x86`: which CPUID bit each Linux ``/proc/cpuinfo`` flag stands for, and which
  libvirt features cpuinfo cannot show (with the reason).
- `x86`: the host CPU model decode (what ``virsh capabilities`` prints as ``<model>``
  and the features beside it) and the guest decode a baseline uses.
- `baseline`: the CPU every host of a pool can run, from their capabilities XML.
- `cpuid`: reading the CPUID leaves libvirt reads, from ``/dev/cpu/N/cpuid``.
"""
