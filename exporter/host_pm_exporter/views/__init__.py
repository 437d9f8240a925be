"""Views of one reading: the /metrics exposition, the status page, --explain, libvirt's
capabilities XML and the textfile, declared in `table`.  They take typed facts and never
touch the host."""
