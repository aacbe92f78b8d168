#!/usr/bin/env python3
# Regenerates mock_funcs.h from p11-kit's pkcs11.h: one forwarding wrapper
# per function of the v2.40 function list (the hand-written ones in mock.c
# are skipped).  Usage: python3 gen_funcs.py [/usr/include/p11-kit-1/p11-kit/pkcs11.h]
import re
import sys

path = sys.argv[1] if len(sys.argv) > 1 else '/usr/include/p11-kit-1/p11-kit/pkcs11.h'
h = open(path).read()
decls = re.findall(r'_CK_DECLARE_FUNCTION\s*\((C_\w+),\s*\((.*?)\)\);', h, re.S)
fl = h[h.index('struct ck_function_list\n{'):]
fl = fl[:fl.index('};')]
order = re.findall(r'CK_(C_\w+) C_\w+;', fl)
d = {n: ' '.join(a.split()) for n, a in decls}


def upper(a):
    # p11-kit #undefs its lower-case names after the header; use the
    # standard upper-case typedefs instead.
    a = re.sub(r'struct ck_(\w+)', lambda m: 'CK_' + m.group(1).upper(), a)
    return re.sub(r'\bck_(\w+?)_t\b', lambda m: 'CK_' + m.group(1).upper(), a)


d = {n: upper(a) for n, a in d.items()}
skip = {'C_Initialize', 'C_Finalize', 'C_GetFunctionList', 'C_GetMechanismList',
        'C_GetMechanismInfo'}
out = ['/* Generated from p11-kit\'s pkcs11.h (v2.40 function list) by',
       ' * tests/mock-p11/gen_funcs.py: one forwarding wrapper per function.  Do not edit. */', '']
out.append('#define MOCK_NFUNCS %d' % len(order))
out.append('static const char *const mock_fnames[MOCK_NFUNCS] = {')
for n in order:
    out.append('\t"%s",' % n)
out.append('};')
for i, n in enumerate(order):
    out.append('#define F_%s %d' % (n, i))
out.append('')
for n in order:
    if n in skip:
        continue
    a = d[n]
    params = [p.strip() for p in a.split(',')] if a != 'void' else []
    names = [re.findall(r'(\w+)\s*$', p)[0] for p in params]
    out.append('static CK_RV\nm_%s(%s)\n{\n\tCK_RV rv_;\n\n\tif (mock_pre(F_%s, &rv_))\n'
               '\t\treturn rv_;\n\treturn target->%s(%s);\n}\n'
               % (n, a, n, n, ', '.join(names)))
out.append('static void\nmock_fill(CK_FUNCTION_LIST *fl)\n{')
for n in order:
    out.append('\tfl->%s = m_%s;' % (n, n))
out.append('}')
open('mock_funcs.h', 'w').write('\n'.join(out) + '\n')
