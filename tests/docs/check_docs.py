#!/usr/bin/env python3
"""Check that the documentation's cross-references lead somewhere, and
that docs/api.md's table of error codes is the header's.

Usage: check_docs.py SOURCE_ROOT

1. Every relative Markdown link in a .md file ([text](path#anchor)) names
   a file that exists and, with an anchor, a heading (or an explicit
   <a id>) of that file, using GitHub's anchor rules.
2. Every docs/NAME.md a source, script or doc names in plain text exists,
   and a section it quotes right after it ('docs/windows.md, "Pacing"')
   is a heading of that file.
3. Nothing points outside the repository (notes kept elsewhere are not
   shipped: their facts belong in docs/ with public sources).
4. docs/api.md's "Error codes" table has one row per code of
   include/iocx.h's enum iocx_error, with the same value, in order.

Prints one line per problem and exits 1 if there was any, else 0.
"""
import os
import re
import sys

SKIP_DIRS = {'.git', 'subprojects', 'node_modules', '.tools', '__pycache__'}
TEXT_EXT = ('.md', '.c', '.h', '.py', '.sh', '.build', '.txt', '.yml',
            '.yaml', '.ini', '.1', '.js', '.json', '.wrap')
# Places a reader of the repository cannot follow.
OUTSIDE = re.compile(r'\.\./shared/|shared/notes/|notes/wine\.md|'
                     r'windows-semantics\.md|docs-vs-code\.md|/work/(?:main|wt|shared|briefs)\b')
LINK = re.compile(r'!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?'
                  r'(?:\s+"[^"]*")?\s*\)')
REF = re.compile(r'\bdocs/([A-Za-z0-9_./-]+?\.md)\b'
                 r'(?:[,:]?\s*\(?\s*(?:section\s+)?"([^"]{1,100})")?')


def is_source_tree_dir(name):
    return name not in SKIP_DIRS and not name.startswith('build')


def walk(root):
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if is_source_tree_dir(x))
        for f in sorted(files):
            if f.endswith(TEXT_EXT) or f in ('meson_options.txt',):
                yield os.path.join(d, f)


def slug(heading):
    """GitHub's anchor for a heading: lower case, markup and punctuation
    dropped (letters, digits, '-', '_' and spaces stay), spaces to '-'."""
    h = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', heading)  # links: text
    h = h.strip().lower()
    h = re.sub(r'<[^>]+>', '', h)
    return ''.join(ch for ch in h if ch.isalnum() or ch in '-_ ').replace(
        ' ', '-')


def strip_code(text):
    """The text with fenced code blocks blanked (lines kept)."""
    out, fence = [], None
    for line in text.split('\n'):
        m = re.match(r'\s*(```|~~~)', line)
        if fence:
            if m and m.group(1) == fence:
                fence = None
            out.append('')
        elif m:
            fence = m.group(1)
            out.append('')
        else:
            out.append(line)
    return out


_headings = {}


def headings(path):
    """Titles and anchors of a Markdown file's headings."""
    if path in _headings:
        return _headings[path]
    with open(path, encoding='utf-8') as f:
        lines = strip_code(f.read())
    titles, anchors, seen, leads = [], set(), {}, []
    prev = ''
    for line in lines:
        # A paragraph or list item led by its topic ("Receive buffers:",
        # "- **No request, no req_lock.**") is a place prose may name.
        item = re.match(r'\s*(?:[-*]|\d+\.)\s+(.*)', line)
        if item or (not prev.strip() and line.strip()):
            leads.append(re.sub(r'[`*_]', '',
                                item.group(1) if item else line).strip())
        prev = line
        m = re.match(r'\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$', line)
        if m:
            title = m.group(1)
            titles.append(re.sub(r'[`*_]', '', title).strip())
            s = slug(title)
            n = seen.get(s, 0)
            seen[s] = n + 1
            anchors.add(s if n == 0 else '%s-%d' % (s, n))
        for a in re.findall(r'<a\s+(?:id|name)="([^"]+)"', line):
            anchors.add(a)
    _headings[path] = (titles, anchors, leads)
    return _headings[path]


def has_section(path, quoted):
    """Whether a section quoted in prose ("Pacing", "Memory per
    connection") is a heading of path, or the topic a paragraph or list
    item starts with (case and markup ignored; a quote may be a heading's
    start, cut before its parenthesis or colon)."""
    q = ' '.join(re.sub(r'[`*_]', '', quoted).split()).lower()
    titles, _, leads = headings(path)
    for t in titles:
        t = ' '.join(t.split()).lower()
        if t == q or t.startswith(q + ' (') or t.startswith(q + ':'):
            return True
    for t in leads:
        t = ' '.join(t.split()).lower()
        if t.startswith(q) and (len(t) == len(q) or
                                not t[len(q)].isalnum()):
            return True
    return False


def check_markdown(root, path, problems):
    rel = os.path.relpath(path, root)
    with open(path, encoding='utf-8') as f:
        lines = strip_code(f.read())
    for no, line in enumerate(lines, 1):
        line = re.sub(r'`[^`]*`', '``', line)   # inline code is not a link
        for target in LINK.findall(line):
            if re.match(r'[a-z][a-z0-9+.-]*:', target):   # http:, mailto:
                continue
            file_part, _, anchor = target.partition('#')
            dest = (os.path.normpath(os.path.join(os.path.dirname(path),
                                                  file_part))
                    if file_part else path)
            if not os.path.exists(dest):
                problems.append('%s:%d: link to missing %s'
                                % (rel, no, target))
                continue
            if os.path.relpath(dest, root).startswith('..'):
                problems.append('%s:%d: link leaves the repository: %s'
                                % (rel, no, target))
                continue
            if anchor and dest.endswith('.md') and \
                    anchor not in headings(dest)[1]:
                problems.append('%s:%d: no heading #%s in %s'
                                % (rel, no, anchor,
                                   os.path.relpath(dest, root)))


def comment_text(text):
    """Text with comment leaders removed and lines joined, so a reference
    split over two comment lines (or C string literals) still reads as
    one."""
    text = re.sub(r'"\s*\n\s*"', '', text).replace('\\"', '"')
    lines = []
    for line in text.split('\n'):
        lines.append(re.sub(r'^\s*(?:/\*+|\*+/?|//+|#+|;+|\.\\")\s?', '',
                            line))
    return ' '.join(' '.join(lines).split())


def check_references(root, path, problems):
    rel = os.path.relpath(path, root)
    with open(path, encoding='utf-8', errors='replace') as f:
        text = f.read()
    for no, line in enumerate(text.split('\n'), 1):
        m = OUTSIDE.search(line)
        if m:
            problems.append('%s:%d: points outside the repository: %s'
                            % (rel, no, m.group(0)))
    for name, section in REF.findall(comment_text(text)):
        dest = os.path.join(root, 'docs', name)
        if not os.path.exists(dest):
            problems.append('%s: names missing docs/%s' % (rel, name))
        elif section and not has_section(dest, section):
            problems.append('%s: docs/%s has no section "%s"'
                            % (rel, name, section))


def check_error_table(root, problems):
    with open(os.path.join(root, 'include', 'iocx.h'),
              encoding='utf-8') as f:
        header = f.read()
    enum = re.search(r'enum iocx_error \{(.*?)\};', header, re.S)
    codes = re.findall(r'\b(IOCX_(?:OK|E_[A-Z_]+))\s*=\s*(-?\d+)',
                       enum.group(1) if enum else '')
    with open(os.path.join(root, 'docs', 'api.md'), encoding='utf-8') as f:
        rows = re.findall(r'^\| `(IOCX_(?:OK|E_[A-Z_]+))` \| (-?\d+) \|',
                          f.read(), re.M)
    if not codes:
        problems.append('include/iocx.h: enum iocx_error not found')
    elif rows != codes:
        have = set(rows)
        for c in codes:
            if c not in have:
                problems.append('docs/api.md: error table lacks %s = %s'
                                % c)
        want = set(codes)
        for r in rows:
            if r not in want:
                problems.append('docs/api.md: error table has %s = %s, '
                                'not in iocx.h' % r)
        if have == want:
            problems.append('docs/api.md: error table is out of order')


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().split('\n')[2], file=sys.stderr)
        return 2
    root = os.path.abspath(sys.argv[1])
    problems = []
    files = 0
    for path in walk(root):
        if os.path.relpath(path, root) == os.path.join('tests', 'docs',
                                                        'check_docs.py'):
            continue    # names the patterns it looks for
        files += 1
        if path.endswith('.md'):
            check_markdown(root, path, problems)
        check_references(root, path, problems)
    check_error_table(root, problems)
    for p in problems:
        print(p)
    print('%d files checked, %d problems' % (files, len(problems)))
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
