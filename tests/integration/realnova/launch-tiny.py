# Run in a real-Nova node with the node's python2.7 (boto 1.9b, Glance 2011.2's client): the tiny
# instance of tests/integration/tinyimage.py through the cloud's own front doors. Its kernel,
# ramdisk and machine image go into Glance at nova.conf's --glance_host as aki, ari and ami (the
# ami names the other two in its kernel_id/ramdisk_id properties); RunInstances with the admin's
# credentials (/root/creds/nova.zip, the agent's admin step); DescribeInstances until running;
# GetConsoleOutput until the marker; TerminateInstances. One "LAUNCH ..." line per event.
# Usage: launch-tiny.py DIR TIMEOUT (DIR holds kernel, ramdisk, disk). Exit 0: running and the
# marker seen; 1 otherwise.
import re
import sys
import time
import zipfile

from boto.ec2.connection import EC2Connection
from boto.ec2.regioninfo import RegionInfo
from glance import client as glance_client

MARKER = 'STACKOPS-TINY-INSTANCE up'


def say(*words):
    print 'LAUNCH ' + ' '.join([str(w) for w in words])
    sys.stdout.flush()


def flag(name, default):
    for line in open('/etc/nova/nova.conf'):
        m = re.match(r'--%s=(.*)$' % name, line.strip())
        if m:
            return m.group(1)
    return default


def main(folder, timeout):
    rc = zipfile.ZipFile('/root/creds/nova.zip').read('novarc')
    env = dict(re.findall(r'^export (\w+)="?(.*?)"?$', rc, re.M))
    url = re.match(r'http://([^:/]+):(\d+)(/.*)', env['EC2_URL'])
    conn = EC2Connection(env['EC2_ACCESS_KEY'], env['EC2_SECRET_KEY'], is_secure=False,
                         region=RegionInfo(None, 'nova', url.group(1)), port=int(url.group(2)),
                         path=url.group(3))
    glance = glance_client.Client(flag('glance_host', '127.0.0.1'), int(flag('glance_port', 9292)))
    ids = {}
    for name, fmt in (('kernel', 'aki'), ('ramdisk', 'ari')):
        meta = {'name': 'tiny-' + name, 'is_public': True, 'disk_format': fmt,
                'container_format': fmt, 'properties': {'type': name}}
        ids[name] = glance.add_image(meta, open('%s/%s' % (folder, name), 'rb'))['id']
    meta = {'name': 'tiny', 'is_public': True, 'disk_format': 'ami', 'container_format': 'ami',
            'properties': {'type': 'machine', 'kernel_id': str(ids['kernel']),
                           'ramdisk_id': str(ids['ramdisk'])}}
    ami = glance.add_image(meta, open('%s/disk' % folder, 'rb'))['id']
    say('images', 'aki-%08x' % ids['kernel'], 'ari-%08x' % ids['ramdisk'], 'ami-%08x' % ami)
    t0 = time.time()
    res = conn.run_instances('ami-%08x' % ami, instance_type='m1.tiny')
    iid = res.instances[0].id
    say('run', iid)
    state, inst, seen = 'pending', None, ''
    try:
        while time.time() - t0 < timeout:
            inst = [x for r in conn.get_all_instances([iid]) for x in r.instances][0]
            if inst.state != state:
                state = inst.state
                say('state', iid, state, 'after %.0f s' % (time.time() - t0))
            if state in ('shutdown', 'terminated', 'error', 'failed'):
                break
            if state == 'running':
                seen = conn.get_console_output(iid).output or ''
                if MARKER in seen:
                    break
            time.sleep(2)
        for line in seen.splitlines():
            if MARKER in line:
                say('console', line.strip())
        ok = state == 'running' and MARKER in seen
        say('passed' if ok else 'FAILED', iid, state, 'marker' if MARKER in seen else 'no marker',
            'after %.0f s' % (time.time() - t0))
        return 0 if ok else 1
    finally:
        conn.terminate_instances([iid])


if __name__ == '__main__':
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
