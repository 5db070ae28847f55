// Unit tests of views/gitItems.ts: the branch line and the file groups of
// the Git Status tree.

import { strict as assert } from 'node:assert';
import { RepoSummary, branchLine, gitTree } from '../../views/gitItems';

const clean: RepoSummary = {
  branch: 'main', detached: false, empty: false, head: '0123456789abcdef', headSummary: 'Initial commit',
  upstream: { name: 'origin/main', ahead: 0, behind: 0 }, staged: [], unstaged: [], untracked: [], conflicted: [],
  stashCount: 0, operation: 0,
};

describe('git status tree', () => {
  it('shows a clean repository', () => {
    const nodes = gitTree(clean);
    assert.deepEqual(nodes.map((n) => [n.kind, n.label, n.description]), [
      ['branch', 'main', 'up to date'], ['clean', 'No changes', ''],
    ]);
  });

  it('shows ahead/behind, a detached HEAD, an operation and stashes', () => {
    assert.equal(branchLine({ ...clean, upstream: { name: 'origin/main', ahead: 2, behind: 1 } }).description, '↑2 · ↓1');
    const detached = branchLine({ ...clean, branch: '', detached: true, upstream: undefined, operation: 2, stashCount: 3 });
    assert.equal(detached.label, 'HEAD detached at 0123456');
    assert.equal(detached.description, 'rebasing · 3 stashed');
    assert.equal(branchLine({ ...clean, upstream: undefined }).description, 'no upstream');
  });

  it('groups files, conflicts first, only non-empty groups', () => {
    const nodes = gitTree({
      ...clean,
      staged: [{ path: 'src/b.rs', oldPath: '', change: 1 }, { path: 'a.rs', oldPath: 'old.rs', change: 4 }],
      untracked: [{ path: 'notes.txt', oldPath: '', change: 6 }],
      conflicted: [{ path: 'src/c.rs', oldPath: '', change: 7 }],
    });
    assert.deepEqual(nodes.map((n) => [n.label, n.description]), [
      ['main', 'up to date'], ['Conflicts', '1'], ['Staged Changes', '2'], ['Untracked', '1'],
    ]);
    const staged = nodes[2].children;
    assert.deepEqual(staged.map((f) => [f.label, f.description, f.path]), [
      ['a.rs', '', 'a.rs'], ['b.rs', 'src', 'src/b.rs'],
    ]);
    assert.equal(staged[0].tooltip, 'a.rs (from old.rs): renamed (R)');
    assert.notEqual(nodes[1].children[0].id, nodes[2].children[0].id);
    assert.deepEqual(staged.map((f) => f.openable), [true, true]);
  });

  it('offers no file to open for a deletion', () => {
    const nodes = gitTree({ ...clean, unstaged: [{ path: 'gone.txt', oldPath: '', change: 3 }] });
    assert.deepEqual(nodes[1].children.map((f) => [f.description, f.icon, f.openable]), [['', 'diff-removed', false]]);
  });
});
