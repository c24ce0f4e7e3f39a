"""In-kernel programs (eBPF): their C sources, their build with clang, their loading with libbpf.

The programs are compiled on first use (``build``) and loaded through Debian's ``libbpf.so.1``
(``libbpf``); a machine without clang, libbpf or the kernel's BTF cannot load them, and the
sensors that use them fall back to what works everywhere (the proc connector).
"""
