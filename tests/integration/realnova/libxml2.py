# HARNESS STAND-IN for python-libxml2 (lucid's libxml2 Python bindings), which nova-compute
# 2011.2's libvirt driver imports (nova/virt/libvirt_conn.py:130-134) and bullseye no longer ships
# for Python 2. It answers the calls that driver makes, from the standard library's ElementTree:
# parseDoc, xpathNewContext/xpathEval ('/a/b/c' and '//a/b' paths only), xpathFreeContext,
# freeDoc, serialize; a node's name, children (its element children, no text nodes), prop,
# getContent, get_properties/get_name/get_next (its attributes in document order is not kept by
# ElementTree: sorted by name, the order libvirt writes them in does not matter to Nova's use).
# One adaptation at the libvirt boundary: libvirt 7.0 writes <topology sockets dies cores
# threads>; lucid's libvirt 0.7.5 had no `dies`, and Nova 2011.2's get_cpu_info requires exactly
# cores, sockets and threads (nova/virt/libvirt_conn.py:1323-1337): `dies` is left out.
import xml.etree.ElementTree as ET


class libxmlError(Exception):
    pass


class _Attr(object):
    def __init__(self, items, i):
        self._items, self._i = items, i

    def get_name(self):
        return self._items[self._i][0]

    def getContent(self):
        return self._items[self._i][1]

    def get_next(self):
        if self._i + 1 < len(self._items):
            return _Attr(self._items, self._i + 1)
        return None


class _Node(object):
    def __init__(self, elem, siblings=None, i=0):
        self._e = elem
        self._siblings = siblings if siblings is not None else [elem]
        self._i = i
        self.name = elem.tag

    @property
    def children(self):
        kids = list(self._e)
        return _Node(kids[0], kids, 0) if kids else None

    def __iter__(self):
        for j in range(self._i, len(self._siblings)):
            yield _Node(self._siblings[j], self._siblings, j)

    def prop(self, name):
        return self._e.get(name)

    def _attrs(self):
        items = sorted(self._e.attrib.items())
        if self._e.tag == 'topology':
            items = [kv for kv in items if kv[0] != 'dies']
        return items

    def get_properties(self):
        items = self._attrs()
        return _Attr(items, 0) if items else None

    def getContent(self):
        return ''.join(self._e.itertext())

    def __str__(self):
        return ET.tostring(self._e)


def _eval(root, path):
    if path.startswith('//'):
        parts = path[2:].split('/')
        heads = [e for e in root.iter(parts[0])]
    elif path.startswith('/'):
        parts = path[1:].split('/')
        heads = [root] if root.tag == parts[0] else []
    else:
        raise libxmlError('xpath not supported by the stand-in: ' + path)
    rest = '/'.join(parts[1:])
    found = []
    for h in heads:
        found.extend([h] if not rest else h.findall(rest))
    return [_Node(e) for e in found]


class _Doc(object):
    def __init__(self, root):
        self._root = root

    def xpathNewContext(self):
        return _Ctx(self._root)

    def xpathEval(self, path):
        return _eval(self._root, path)

    def serialize(self):
        return ET.tostring(self._root)

    def freeDoc(self):
        pass


class _Ctx(object):
    def __init__(self, root):
        self._root = root

    def xpathEval(self, path):
        return _eval(self._root, path)

    def xpathFreeContext(self):
        pass


def parseDoc(text):
    try:
        return _Doc(ET.fromstring(text))
    except Exception as e:
        raise libxmlError('xmlParseDoc() failed: %s' % e)
