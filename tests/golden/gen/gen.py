#!/usr/bin/python3
"""Regenerate the golden cases of tests/golden/cases by running the reference libraries.

  gen.py [--ref-dir DIR] [--out DIR] [--only ID ...]   write the cases (default: tests/golden/cases)
  gen.py --check [--ref-dir DIR] [--only ID ...]       regenerate into a temporary folder and
                                                      compare with tests/golden/cases

The reference work trees are found in --ref-dir or $ATTN_REF_DIR (see README.md). Not part of
`make test`.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import safetensors_io as st  # noqa: E402
import table  # noqa: E402
import refs  # noqa: E402

CASES_DIR = os.path.normpath(os.path.join(HERE, '..', 'cases'))


def _mask_tensor(spec):
    import torch
    kind, val = spec
    if kind == 'lengths':
        return torch.tensor(val, dtype=torch.int64)
    if kind == 'causal':
        return torch.ones(val, dtype=torch.bool).tril()
    if kind == 'bool':
        return torch.tensor(val, dtype=torch.bool)
    raise KeyError(kind)


def run_case(row):
    """Returns (case.json dict, weights [(name, array)] or None, io [(name, array)])."""
    import torch
    ctor, call = refs.BUILDERS[row['type']]
    torch.manual_seed(row['seed'])
    module = ctor(row['config'], row['type'])
    if 'post' in row:
        refs.POST[row['post']](module)
    module.eval()
    scale = row.get('scale', {})
    xs = []
    for name, shape in row['inputs']:
        x = torch.randn(shape)
        xs.append(x * scale[name] if name in scale else x)
    masks = {}
    for arg, spec in row.get('masks', {}).items():
        masks[arg] = (spec, torch.randn(spec[1]) if spec[0] == 'randn' else _mask_tensor(spec))
    maps = []
    with torch.no_grad():
        if row.get('maps'):  # also the reference's attention weights (refs.MAPS)
            out, maps = refs.MAPS[row['type']](module, xs, masks, call)
        else:
            out = call(module, xs, masks)
    io = [(n, x.numpy()) for (n, _), x in zip(row['inputs'], xs)]
    io += [(arg, t.numpy()) for arg, (_, t) in masks.items()]
    io.append(('out', out.detach().numpy()))
    io += maps
    sd = module.state_dict()
    weights = [(k, v.detach().numpy()) for k, v in sd.items()] or None
    case = {
        'id': row['id'], 'reference': row['reference'], 'type': row['type'],
        'config': row['config'], 'inputs': [n for n, _ in row['inputs']],
        'optional_inputs': {arg: arg for arg in row.get('masks', {})},
        'output': 'out', 'rtol': row['tol'][0], 'atol': row['tol'][1],
    }
    if maps:  # attnd output name -> io.safetensors tensor (attn run --output-attention)
        case['extra_outputs'] = {n: n for n, _ in maps}
    return case, weights, io


def write_case(out_dir, row):
    case, weights, io = run_case(row)
    d = os.path.join(out_dir, row['id'])
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'case.json'), 'w') as f:
        f.write(json.dumps(case, indent=2) + '\n')
    meta = {'format': 'pt', 'case': row['id']}
    st.write(os.path.join(d, 'io.safetensors'), io, meta)
    wpath = os.path.join(d, 'weights.safetensors')
    if weights:
        st.write(wpath, weights, meta)
    elif os.path.exists(wpath):
        os.remove(wpath)


def write_index(out_dir, rows):
    idx = dict(table.INDEX)
    idx['cases'] = [{'id': r['id'], 'type': r['type']} for r in rows]
    with open(os.path.join(out_dir, 'index.json'), 'w') as f:
        f.write(json.dumps(idx, indent=2))


def compare_case(got_dir, want_dir, row):
    """Returns (verdict, detail): 'identical' (same bytes), 'within' (tolerance) or 'DIFFER'."""
    cid = row['id']
    g, w = os.path.join(got_dir, cid), os.path.join(want_dir, cid)
    if not os.path.isdir(w):
        return 'NEW', 'not in %s' % want_dir
    names = sorted(set(os.listdir(g)) | set(os.listdir(w)))
    same = all(os.path.exists(os.path.join(g, n)) and os.path.exists(os.path.join(w, n)) and
               open(os.path.join(g, n), 'rb').read() == open(os.path.join(w, n), 'rb').read()
               for n in names)
    if same:
        return 'identical', ''
    problems = []
    if json.load(open(os.path.join(g, 'case.json'))) != json.load(open(os.path.join(w, 'case.json'))):
        problems.append('case.json differs')
    rtol, atol = row['tol']
    outs = {'out'} | set(json.load(open(os.path.join(w, 'case.json'))).get('extra_outputs', {}))
    for fname in ('weights.safetensors', 'io.safetensors'):
        gp, wp = os.path.join(g, fname), os.path.join(w, fname)
        if os.path.exists(gp) != os.path.exists(wp):
            problems.append(fname + ' present in only one')
            continue
        if not os.path.exists(gp):
            continue
        gt, _ = st.read(gp)
        wt, _ = st.read(wp)
        if sorted(gt) != sorted(wt):
            problems.append('%s tensor names differ' % fname)
            continue
        for n in wt:
            a, b = gt[n], wt[n]
            if a.shape != b.shape or a.dtype != b.dtype:
                problems.append('%s:%s shape/dtype' % (fname, n))
            elif a.dtype != np.float32 or fname != 'io.safetensors' or n not in outs:
                if not np.array_equal(a, b):
                    problems.append('%s:%s differs (an input or weight)' % (fname, n))
            elif not np.all(np.abs(a - b) <= atol + rtol * np.abs(b)):
                problems.append('%s outside tolerance (max abs diff %g)' % (n, np.abs(a - b).max()))
    if problems:
        return 'DIFFER', '; '.join(problems)
    return 'within', 'inputs and weights equal, output within rtol/atol, bytes differ'


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--ref-dir', default=os.environ.get('ATTN_REF_DIR'),
                    help='folder holding the reference work trees (default $ATTN_REF_DIR)')
    ap.add_argument('--out', default=CASES_DIR, help='where to write the cases')
    ap.add_argument('--check', action='store_true',
                    help='regenerate into a temporary folder and compare with tests/golden/cases')
    ap.add_argument('--only', nargs='+', metavar='ID', help='only these case ids')
    a = ap.parse_args(argv)
    if not a.ref_dir:
        ap.error('give --ref-dir or set ATTN_REF_DIR')
    refs.setup(a.ref_dir)
    import torch
    rows = table.CASES
    if a.only:
        unknown = set(a.only) - {r['id'] for r in rows}
        if unknown:
            ap.error('unknown case ids: ' + ', '.join(sorted(unknown)))
        rows = [r for r in rows if r['id'] in a.only]
    out = tempfile.mkdtemp(prefix='golden-gen-') if a.check else a.out
    try:
        os.makedirs(out, exist_ok=True)
        for r in rows:
            write_case(out, r)
        if not a.only:
            write_index(out, table.CASES)
        if not a.check:
            print('wrote %d cases to %s (torch %s)' % (len(rows), out, torch.__version__))
            return 0
        bad = 0
        counts = {}
        for r in rows:
            verdict, detail = compare_case(out, CASES_DIR, r)
            counts[verdict] = counts.get(verdict, 0) + 1
            bad += verdict in ('DIFFER', 'NEW')
            print('%-10s %s %s' % (verdict, r['id'], detail))
        if not a.only:
            same = open(os.path.join(out, 'index.json'), 'rb').read() == \
                open(os.path.join(CASES_DIR, 'index.json'), 'rb').read()
            print('%-10s index.json' % ('identical' if same else 'DIFFER'))
            bad += not same
        print('torch %s: %s' % (torch.__version__,
                                ', '.join('%d %s' % (v, k) for k, v in sorted(counts.items()))))
        return 1 if bad else 0
    finally:
        if a.check:
            shutil.rmtree(out)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
