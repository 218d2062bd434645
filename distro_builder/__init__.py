"""distro-builder: remaster an Ubuntu 10.04 LTS server ISO into an OpenStack Nova distro."""

__version__ = "0.1.0"
