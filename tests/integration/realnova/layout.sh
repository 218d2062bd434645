#!/bin/sh
# Run in the chroot once the python env exists: what lucid's nova/glance packages put on a node
# that the harness must add by hand, plus the init stand-in's folders.
set -eu
for b in nova-manage nova-api nova-scheduler nova-network nova-compute nova-objectstore \
    nova-dhcpbridge nova-volume; do
    printf '#!/bin/sh\nexec /opt/nova-env/bin/python /opt/nova/bin/%s "$@"\n' "$b" >"/usr/bin/$b"
    chmod 755 "/usr/bin/$b"
done
for b in glance-api glance-registry glance-manage; do ln -sf "/opt/nova-env/bin/$b" "/usr/bin/$b"; done
# python-nova's CA folder (genrootca.sh, openssl.cnf.tmpl), where the agent's admin step finds it
mkdir -p /usr/share/pyshared/nova
rm -rf /usr/share/pyshared/nova/CA
cp -a /opt/nova/nova/CA /usr/share/pyshared/nova/CA
# no /etc/nova/api-paste.ini: the agent installs it (issue 22 finding 12)
mkdir -p /etc/nova /etc/init /opt/realnova/run /opt/realnova/log
getent group nova >/dev/null || groupadd --system nova
getent group glance >/dev/null || groupadd --system glance
mkdir -p /var/lib/nova /var/log/nova /var/lock/nova /var/lib/glance /run/mysqld /run/network
# --instances_path (nova/compute/manager.py: $state_path/instances), which nova-compute's libvirt
# driver statvfs()es at start (nova/virt/libvirt_conn.py:1215); INFERRED: lucid's nova-common
# package ships the folder (its debian/*.dirs), so no agent step makes it
mkdir -p /var/lib/nova/instances
chown mysql:mysql /run/mysqld
# lucid's python-boto is the system python's: stackops-check runs /usr/bin/python
echo /opt/nova-env/lib/python2.7/site-packages >/usr/lib/python2.7/dist-packages/realnova.pth
# one (stand-in) upstart job file per service: the agent's so_service_kind looks for them
for j in /opt/realnova/jobs/*; do
    case $j in *.stop) continue ;; esac
    echo "# harness stand-in for lucid's /etc/init/${j##*/}.conf (see /sbin/initctl)" \
        >"/etc/init/${j##*/}.conf"
done
