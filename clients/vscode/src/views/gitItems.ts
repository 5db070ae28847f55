// The Git Status tree's content in plain data: a header with the branch
// and its distance from the upstream, then the staged, unstaged, untracked
// and conflicted groups (only those with files), each file with its change
// letter. No `vscode` import (unit-tested under mocha).

import type { RepoStatus, StatusEntry } from '../gen/omnipanel/v1/git';

/** One changed path, with ChangeType as its enum number. */
export interface StatusFile {
  path: string;
  oldPath: string;
  change: number;
}

export interface RepoSummary {
  branch: string;
  detached: boolean;
  empty: boolean;
  head: string;
  headSummary: string;
  upstream?: { name: string; ahead: number; behind: number };
  staged: StatusFile[];
  unstaged: StatusFile[];
  untracked: StatusFile[];
  conflicted: StatusFile[];
  stashCount: number;
  /** RepoOperation as its enum number; 0 = none. */
  operation: number;
}

export interface GitNode {
  kind: 'branch' | 'group' | 'file' | 'clean';
  id: string;
  label: string;
  description: string;
  tooltip: string;
  icon: string;
  contextValue: string;
  /** For files: the path relative to the repository root. */
  path: string;
  /** For files: whether there is a file to open (not for deletions). */
  openable: boolean;
  children: GitNode[];
}

/** Letters as `git status --short` and VS Code's SCM view show them. */
const CHANGE_LETTER: Record<number, string> = {
  1: 'A', 2: 'M', 3: 'D', 4: 'R', 5: 'T', 6: 'U', 7: '!',
};
const CHANGE_WORD: Record<number, string> = {
  1: 'added', 2: 'modified', 3: 'deleted', 4: 'renamed', 5: 'type changed', 6: 'untracked', 7: 'conflicted',
};
const OPERATION: Record<number, string> = {
  1: 'merging', 2: 'rebasing', 3: 'cherry-picking', 4: 'reverting', 5: 'bisecting', 6: 'applying patches',
};

function fileNode(group: string, file: StatusFile): GitNode {
  const slash = file.path.lastIndexOf('/');
  const name = slash >= 0 ? file.path.slice(slash + 1) : file.path;
  const dir = slash >= 0 ? file.path.slice(0, slash) : '';
  const word = CHANGE_WORD[file.change] ?? 'changed';
  const renamed = file.oldPath && file.oldPath !== file.path ? ` (from ${file.oldPath})` : '';
  return {
    kind: 'file',
    id: `file:${group}:${file.path}`,
    label: name,
    // The change shows as the icon (and VS Code's own decoration of the
    // file); the description keeps the folder, like the SCM view.
    description: dir,
    tooltip: `${file.path}${renamed}: ${word} (${CHANGE_LETTER[file.change] ?? '?'})`,
    icon: file.change === 3 ? 'diff-removed' : file.change === 7 ? 'warning' : file.change === 6 || file.change === 1
      ? 'diff-added' : 'diff-modified',
    contextValue: `omnipanel.gitFile ${group}`,
    path: file.path,
    openable: file.change !== 3,
    children: [],
  };
}

/** The header line: "main ↑2 ↓1" and what the tooltip explains. */
export function branchLine(status: RepoSummary): { label: string; description: string; tooltip: string } {
  const label = status.detached ? `HEAD detached at ${status.head.slice(0, 7)}` : status.branch || '(no branch)';
  const bits: string[] = [];
  const tips: string[] = [];
  if (status.upstream) {
    if (status.upstream.ahead > 0) bits.push(`↑${status.upstream.ahead}`);
    if (status.upstream.behind > 0) bits.push(`↓${status.upstream.behind}`);
    if (status.upstream.ahead === 0 && status.upstream.behind === 0) bits.push('up to date');
    tips.push(`Tracks ${status.upstream.name}: ${status.upstream.ahead} ahead, ${status.upstream.behind} behind`);
  } else if (!status.detached) {
    bits.push('no upstream');
  }
  const operation = OPERATION[status.operation];
  if (operation) {
    bits.push(operation);
    tips.push(`In progress: ${operation}`);
  }
  if (status.stashCount > 0) bits.push(`${status.stashCount} stashed`);
  if (status.empty) tips.push('No commit yet');
  else if (status.headSummary) tips.push(`HEAD: ${status.headSummary}`);
  return { label, description: bits.join(' · '), tooltip: [label, ...tips].join('\n') };
}

/** The tree's top level for one repository. */
export function gitTree(status: RepoSummary): GitNode[] {
  const line = branchLine(status);
  const nodes: GitNode[] = [{
    kind: 'branch', id: 'branch', label: line.label, description: line.description, tooltip: line.tooltip,
    icon: 'git-branch', contextValue: 'omnipanel.gitBranch', path: '', openable: false, children: [],
  }];
  const groups: [string, string, StatusFile[]][] = [
    ['conflicted', 'Conflicts', status.conflicted],
    ['staged', 'Staged Changes', status.staged],
    ['unstaged', 'Changes', status.unstaged],
    ['untracked', 'Untracked', status.untracked],
  ];
  let any = false;
  for (const [key, title, files] of groups) {
    if (files.length === 0) continue;
    any = true;
    const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    nodes.push({
      kind: 'group', id: `group:${key}`, label: title, description: String(files.length),
      tooltip: `${files.length} file${files.length === 1 ? '' : 's'}`, icon: key === 'conflicted' ? 'warning' : '',
      contextValue: `omnipanel.gitGroup ${key}`, path: '', openable: false, children: sorted.map((f) => fileNode(key, f)),
    });
  }
  if (!any) {
    nodes.push({
      kind: 'clean', id: 'clean', label: 'No changes', description: '', tooltip: 'The working tree matches HEAD',
      icon: 'check', contextValue: 'omnipanel.gitClean', path: '', openable: false, children: [],
    });
  }
  return nodes;
}

function files(entries: StatusEntry[]): StatusFile[] {
  return entries.map((e) => ({ path: e.path, oldPath: e.oldPath, change: e.change }));
}

/** The generated RepoStatus as the plain summary gitTree() shapes. */
export function summarizeStatus(s: RepoStatus): RepoSummary {
  return {
    branch: s.branch,
    detached: s.detached,
    empty: s.empty,
    head: s.head,
    headSummary: s.headSummary,
    upstream: s.upstream ? { name: s.upstream.name, ahead: s.upstream.ahead, behind: s.upstream.behind } : undefined,
    staged: files(s.staged),
    unstaged: files(s.unstaged),
    untracked: files(s.untracked),
    conflicted: files(s.conflicted),
    stashCount: s.stashCount,
    operation: s.operation,
  };
}
