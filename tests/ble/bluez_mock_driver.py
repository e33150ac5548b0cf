#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The Mimamori authors
# SPDX-License-Identifier: Apache-2.0
"""Drives python3-dbusmock's bluez5 template for the BLE tests: one command per stdin line.

Run with /usr/bin/python3 and DBUS_SYSTEM_BUS_ADDRESS set to the test's private bus. Each
command answers one line: "ok [value]" or "error <text>". Commands:
  adapter-add NAME                 -> ok /org/bluez/NAME
  adapter-remove NAME              (the adapter object only, like a crashing bluetoothd)
  device-add ADAPTER ADDRESS       -> ok <device path>
  rssi PATH DBM                    Properties.Set RSSI (int16): one PropertiesChanged
  mfr PATH CID:HEX[,CID:HEX...]    Properties.Set ManufacturerData a{qv}
  svc PATH UUID:HEX[,UUID:HEX...]  Properties.Set ServiceData a{sv}
  bad PATH PROPERTY KIND           Set PROPERTY to a wrongly typed value (KIND: string|int|
                                   mfr-string-values|svc-int-keys)
  devices                          -> ok <number of Device1 objects>
  discovering ADAPTER              -> ok <Discovering> <Transport> <DuplicateData>
  flood PATH COUNT                 COUNT rssi updates as fast as the mock takes them -> ok <seconds>
  wait-bluez                       wait (up to 10 s) until org.bluez is on the bus
  quit
"""
import sys
import time

import dbus

DEVICE = 'org.bluez.Device1'
ADAPTER = 'org.bluez.Adapter1'
PROPS = 'org.freedesktop.DBus.Properties'


def hex_bytes(text):
    return dbus.Array([dbus.Byte(b) for b in bytes.fromhex(text)], signature='y')


def pairs(text):
    for item in text.split(','):
        key, _, value = item.partition(':')
        if not _:
            # A UUID contains no ':'; the last ':' separates it from the hex payload.
            raise ValueError('expected KEY:HEX')
        yield key, value


def run(bus, words):
    cmd = words[0]
    if cmd == 'wait-bluez':
        deadline = time.monotonic() + 10
        while True:
            try:
                # Owning the name is not enough: the template's objects must be there too.
                dbus.Interface(bus.get_object('org.bluez', '/'),
                               'org.freedesktop.DBus.ObjectManager').GetManagedObjects()
                return ''
            except dbus.exceptions.DBusException:
                if time.monotonic() > deadline:
                    raise RuntimeError('org.bluez did not appear')
                time.sleep(0.02)
    mock = dbus.Interface(bus.get_object('org.bluez', '/'), 'org.bluez.Mock')
    if cmd == 'adapter-add':
        return str(mock.AddAdapter(words[1], 'mimamori-test'))
    if cmd == 'adapter-remove':
        mock.RemoveAdapter(words[1])
        return ''
    if cmd == 'device-add':
        return str(mock.AddDevice(words[1], words[2], 'tag'))
    if cmd in ('rssi', 'mfr', 'svc', 'bad'):
        props = dbus.Interface(bus.get_object('org.bluez', words[1]), PROPS)
        if cmd == 'rssi':
            props.Set(DEVICE, 'RSSI', dbus.Int16(int(words[2])))
        elif cmd == 'mfr':
            value = dbus.Dictionary({dbus.UInt16(int(k, 0)): hex_bytes(v) for k, v in pairs(words[2])},
                                    signature='qv')
            props.Set(DEVICE, 'ManufacturerData', value)
        elif cmd == 'svc':
            value = {}
            for item in words[2].split(','):
                uuid, _, payload = item.rpartition(':')
                value[dbus.String(uuid)] = hex_bytes(payload)
            props.Set(DEVICE, 'ServiceData', dbus.Dictionary(value, signature='sv'))
        else:
            kind = words[3]
            if kind == 'string':
                value = dbus.String('not a dictionary')
            elif kind == 'int':
                value = dbus.Int32(7)
            elif kind == 'mfr-string-values':
                value = dbus.Dictionary({dbus.UInt16(0x004C): dbus.String('0215')}, signature='qv')
            elif kind == 'svc-int-keys':
                value = dbus.Dictionary({dbus.UInt32(0xFEAA): hex_bytes('00')}, signature='uv')
            else:
                raise ValueError('unknown kind ' + kind)
            props.Set(DEVICE, words[2], value)
        return ''
    if cmd == 'devices':
        objects = dbus.Interface(bus.get_object('org.bluez', '/'),
                                 'org.freedesktop.DBus.ObjectManager').GetManagedObjects()
        return str(sum(1 for ifaces in objects.values() if DEVICE in ifaces))
    if cmd == 'discovering':
        props = dbus.Interface(bus.get_object('org.bluez', '/org/bluez/' + words[1]), PROPS)
        discovering = bool(props.Get(ADAPTER, 'Discovering'))
        flt = props.Get(ADAPTER, 'DiscoveryFilter')
        return '%s %s %s' % (discovering, str(flt.get('Transport', '-')), bool(flt.get('DuplicateData', False)))
    if cmd == 'flood':
        props = dbus.Interface(bus.get_object('org.bluez', words[1]), PROPS)
        count = int(words[2])
        start = time.monotonic()
        for i in range(count):
            props.Set(DEVICE, 'RSSI', dbus.Int16(-40 - (i % 20)))
        return '%.6f' % (time.monotonic() - start)
    raise ValueError('unknown command ' + cmd)


def main():
    bus = dbus.SystemBus()
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == 'quit':
            break
        try:
            result = run(bus, words)
            print(('ok ' + result).rstrip(), flush=True)
        except Exception as e:  # one line back to the test, whatever went wrong
            print('error ' + str(e).replace('\n', ' '), flush=True)


if __name__ == '__main__':
    main()
