//! A persistent (copy-on-write) B+tree of [`Entry`]s, ordered by key: the
//! ordered index of a table, and what a snapshot holds.
//!
//! Nodes live behind [`Arc`]s. Cloning a [`Tree`] is O(1) (one count
//! increment on its root); the clone and the original then share every
//! node. A write walks from the root to one leaf and makes each node on
//! that path unique with [`Arc::make_mut`]: a node that no other version
//! shares is changed in place, one that a snapshot still shares is copied
//! first (about 0.5 KiB per node, up to one node per level). Old nodes,
//! and the entries only they hold, are freed when the last version
//! holding them is dropped: there is no garbage-collection thread.
//!
//! Shape (the classic B+tree; compare redb's and LMDB's pages, here in
//! memory):
//! - a leaf holds up to [`MAX`] entries in key order;
//! - a branch holds up to `MAX` children and, between each two, a
//!   separator: the first key of the right-hand child's subtree when the
//!   separator was made. Every key in `children[i + 1]` is `>= seps[i]`,
//!   every key in `children[i]` is `< seps[i]`. A separator is a copy of the
//!   key only (reference-counted), so a deleted pair's value is not kept
//!   alive by it;
//! - every leaf is at the same depth. A node that falls below `MAX / 4`
//!   after a removal is merged with a sibling (and split in two again if
//!   that is over `MAX`); a root branch with one child is replaced by it.
//!
//! Comparisons use each entry's 8-byte inline key prefix first and read
//! the key bytes only when the prefixes are equal.
//!
//! Thread safety: a `Tree` is `Send + Sync`; it is changed through
//! `&mut`, and versions that share nodes may be read and dropped from any
//! thread (the counts are atomic).

use super::entry::{key_prefix, Entry};
use std::cmp::Ordering;
use std::ops::Bound;
use std::sync::Arc;

/// Most entries in a leaf, and most children of a branch. 32 entries of 16
/// bytes fill a 512-byte leaf; measured against 16 and 64 in the getbench
/// and scan phases of `make bench` (see docs/bench/index.md).
pub const MAX: usize = 32;
/// Fewest entries (or children) a non-root node keeps after a removal.
const MIN: usize = MAX / 4;
/// Entries per leaf (children per branch) when a tree is built from sorted
/// input: 7/8 full, so that the first random writes after a load do not
/// split every leaf at once.
const BULK_FILL: usize = MAX * 7 / 8;

/// A branch's separator: a key and its prefix.
#[derive(Clone)]
pub(crate) struct Sep {
    prefix: u64,
    key: Arc<[u8]>,
}

impl Sep {
    fn of(e: &Entry) -> Sep {
        Sep {
            prefix: e.prefix,
            key: e.key().into(),
        }
    }

    /// Whether this separator is `<=` the key `(prefix, key)`.
    #[inline]
    fn le(&self, prefix: u64, key: &[u8]) -> bool {
        self.prefix.cmp(&prefix).then_with(|| self.key[..].cmp(key)) != Ordering::Greater
    }
}

/// A tree node.
pub(crate) enum Node {
    Leaf(Vec<Entry>),
    Branch {
        seps: Vec<Sep>,
        children: Vec<Arc<Node>>,
    },
}

impl Clone for Node {
    /// A copy with room for one more entry than [`MAX`], so that the
    /// insert that caused the copy (and the split it may cause) does not
    /// reallocate.
    fn clone(&self) -> Node {
        match self {
            Node::Leaf(v) => {
                let mut n = Vec::with_capacity(MAX + 1);
                n.extend(v.iter().cloned());
                Node::Leaf(n)
            }
            Node::Branch { seps, children } => {
                let mut s = Vec::with_capacity(MAX);
                s.extend(seps.iter().cloned());
                let mut c = Vec::with_capacity(MAX + 1);
                c.extend(children.iter().cloned());
                Node::Branch {
                    seps: s,
                    children: c,
                }
            }
        }
    }
}

impl Node {
    /// Entries (leaf) or children (branch).
    fn len(&self) -> usize {
        match self {
            Node::Leaf(v) => v.len(),
            Node::Branch { children, .. } => children.len(),
        }
    }

    /// Bytes of this node's own allocations (not its children's or its
    /// entries'): the `Arc` header, the node, its vectors' capacity and
    /// its separators' keys.
    pub(crate) fn heap_bytes(&self) -> u64 {
        let base = 16 + std::mem::size_of::<Node>() as u64;
        match self {
            Node::Leaf(v) => base + (v.capacity() * std::mem::size_of::<Entry>()) as u64,
            Node::Branch { seps, children } => {
                base + (seps.capacity() * std::mem::size_of::<Sep>()) as u64
                    + (children.capacity() * 8) as u64
                    + seps
                        .iter()
                        .map(|s| (16 + s.key.len() as u64).div_ceil(8) * 8)
                        .sum::<u64>()
            }
        }
    }

    /// Call `f` on this node and every node below it, and `leaf` on every
    /// entry; `f` returns `false` to skip a node's subtree.
    pub(crate) fn walk(
        node: &Arc<Node>,
        f: &mut impl FnMut(&Arc<Node>) -> bool,
        leaf: &mut impl FnMut(&Entry),
    ) {
        if !f(node) {
            return;
        }
        match &**node {
            Node::Leaf(v) => v.iter().for_each(&mut *leaf),
            Node::Branch { children, .. } => {
                for c in children {
                    Node::walk(c, f, leaf);
                }
            }
        }
    }
}

/// The child of a branch with separators `seps` whose range holds `key`.
#[inline]
fn child_index(seps: &[Sep], prefix: u64, key: &[u8]) -> usize {
    seps.partition_point(|s| s.le(prefix, key))
}

/// Split the entries of `v` at `at`, into a new leaf.
fn split_leaf(v: &mut Vec<Entry>, at: usize) -> (Sep, Arc<Node>) {
    let mut r = Vec::with_capacity(MAX + 1);
    r.extend(v.drain(at..));
    (Sep::of(&r[0]), Arc::new(Node::Leaf(r)))
}

/// Split a branch at child `at`: the right half goes into a new branch and
/// the separator between the halves moves up.
fn split_branch(seps: &mut Vec<Sep>, children: &mut Vec<Arc<Node>>, at: usize) -> (Sep, Arc<Node>) {
    let mut rc = Vec::with_capacity(MAX + 1);
    rc.extend(children.drain(at..));
    let mut rs = Vec::with_capacity(MAX);
    rs.extend(seps.drain(at - 1..));
    let up = rs.remove(0);
    (
        up,
        Arc::new(Node::Branch {
            seps: rs,
            children: rc,
        }),
    )
}

/// Where a split puts its cut when the write that caused it landed at
/// position `i` of a node now holding `len` items: an append at the end
/// leaves the left node full (a sequential load fills nodes), any other
/// position halves it.
fn cut(i: usize, len: usize) -> usize {
    if i + 1 == len {
        MAX
    } else {
        len / 2
    }
}

/// Insert `e` below `node`: the entry it replaced, and a new right sibling
/// if `node` split.
fn insert_into(node: &mut Node, e: Entry) -> (Option<Entry>, Option<(Sep, Arc<Node>)>) {
    match node {
        Node::Leaf(v) => match v.binary_search_by(|x| x.cmp_key(e.prefix, e.key())) {
            Ok(i) => (Some(std::mem::replace(&mut v[i], e)), None),
            Err(i) => {
                v.insert(i, e);
                if v.len() > MAX {
                    let at = cut(i, v.len());
                    (None, Some(split_leaf(v, at)))
                } else {
                    (None, None)
                }
            }
        },
        Node::Branch { seps, children } => {
            let i = child_index(seps, e.prefix, e.key());
            let (old, split) = insert_into(Arc::make_mut(&mut children[i]), e);
            let Some((sep, right)) = split else {
                return (old, None);
            };
            seps.insert(i, sep);
            children.insert(i + 1, right);
            if children.len() > MAX {
                let at = cut(i + 1, children.len());
                return (old, Some(split_branch(seps, children, at)));
            }
            (old, None)
        }
    }
}

/// Remove `key` below `node`, rebalancing on the way back up.
fn remove_from(node: &mut Node, prefix: u64, key: &[u8]) -> Option<Entry> {
    match node {
        Node::Leaf(v) => match v.binary_search_by(|x| x.cmp_key(prefix, key)) {
            Ok(i) => Some(v.remove(i)),
            Err(_) => None,
        },
        Node::Branch { seps, children } => {
            let i = child_index(seps, prefix, key);
            let r = remove_from(Arc::make_mut(&mut children[i]), prefix, key);
            if r.is_some() && children[i].len() < MIN && children.len() > 1 {
                rebalance(seps, children, i);
            }
            r
        }
    }
}

/// Merge child `i` (which is under [`MIN`]) with a sibling; split the
/// result in two again if it holds more than [`MAX`].
fn rebalance(seps: &mut Vec<Sep>, children: &mut Vec<Arc<Node>>, i: usize) {
    let l = if i + 1 < children.len() { i } else { i - 1 };
    let right = children.remove(l + 1);
    let sep = seps.remove(l);
    let right = Arc::try_unwrap(right).unwrap_or_else(|shared| (*shared).clone());
    let left = Arc::make_mut(&mut children[l]);
    let split = match (left, right) {
        (Node::Leaf(a), Node::Leaf(b)) => {
            a.extend(b);
            (a.len() > MAX).then(|| {
                let at = a.len() / 2;
                split_leaf(a, at)
            })
        }
        (
            Node::Branch {
                seps: sa,
                children: ca,
            },
            Node::Branch {
                seps: sb,
                children: cb,
            },
        ) => {
            sa.push(sep);
            sa.extend(sb);
            ca.extend(cb);
            (ca.len() > MAX).then(|| {
                let at = ca.len() / 2;
                split_branch(sa, ca, at)
            })
        }
        _ => unreachable!("siblings in a B+tree have the same height"),
    };
    if let Some((sep, node)) = split {
        seps.insert(l, sep);
        children.insert(l + 1, node);
    }
}

/// See the module docs.
#[derive(Clone, Default)]
pub struct Tree {
    root: Option<Arc<Node>>,
    len: usize,
}

impl std::fmt::Debug for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tree({} entries)", self.len)
    }
}

impl Tree {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The root, if the tree is not empty (for walks over its nodes).
    pub(crate) fn root(&self) -> Option<&Arc<Node>> {
        self.root.as_ref()
    }

    /// The entry of `key`.
    pub fn get(&self, key: &[u8]) -> Option<&Entry> {
        let p = key_prefix(key);
        let mut n = self.root.as_deref()?;
        loop {
            match n {
                Node::Leaf(v) => {
                    return v
                        .binary_search_by(|e| e.cmp_key(p, key))
                        .ok()
                        .map(|i| &v[i])
                }
                Node::Branch { seps, children } => n = &children[child_index(seps, p, key)],
            }
        }
    }

    /// Insert `e`, or replace the entry with its key; returns the entry
    /// replaced. Copies the nodes on the path that another version shares.
    pub fn insert(&mut self, e: Entry) -> Option<Entry> {
        let root = self
            .root
            .get_or_insert_with(|| Arc::new(Node::Leaf(Vec::with_capacity(MAX + 1))));
        let (old, split) = insert_into(Arc::make_mut(root), e);
        if let Some((sep, right)) = split {
            let left = Arc::clone(root);
            let mut children = Vec::with_capacity(MAX + 1);
            children.extend([left, right]);
            let mut seps = Vec::with_capacity(MAX);
            seps.push(sep);
            *root = Arc::new(Node::Branch { seps, children });
        }
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Remove `key`'s entry and return it. Cheapest when the key is
    /// present: the path to its leaf is made unique before the leaf is
    /// searched, so removing an absent key may copy nodes for nothing.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let root = self.root.as_mut()?;
        let r = remove_from(Arc::make_mut(root), key_prefix(key), key)?;
        self.len -= 1;
        match &**root {
            Node::Branch { children, .. } if children.len() == 1 => {
                let only = Arc::clone(&children[0]);
                *root = only;
            }
            Node::Leaf(v) if v.is_empty() => self.root = None,
            _ => {}
        }
        Some(r)
    }

    /// Build a tree from entries in strictly increasing key order, with
    /// nodes [`BULK_FILL`] full. O(n).
    pub fn from_sorted(entries: Vec<Entry>) -> Tree {
        debug_assert!(entries.windows(2).all(|w| w[0] < w[1]));
        let len = entries.len();
        if len == 0 {
            return Tree::default();
        }
        // Each level: (first entry's separator, node).
        let mut level: Vec<(Sep, Arc<Node>)> = Vec::new();
        let mut it = entries.into_iter();
        for size in even_chunks(len) {
            let mut v = Vec::with_capacity(MAX + 1);
            v.extend(it.by_ref().take(size));
            level.push((Sep::of(&v[0]), Arc::new(Node::Leaf(v))));
        }
        while level.len() > 1 {
            let mut up = Vec::with_capacity(level.len() / BULK_FILL + 1);
            let mut it = level.into_iter();
            for size in even_chunks(it.len()) {
                let mut seps = Vec::with_capacity(MAX);
                let mut children = Vec::with_capacity(MAX + 1);
                let mut first = None;
                for (sep, node) in it.by_ref().take(size) {
                    if first.is_none() {
                        first = Some(sep);
                    } else {
                        seps.push(sep);
                    }
                    children.push(node);
                }
                let first = first.expect("chunks are not empty");
                up.push((first, Arc::new(Node::Branch { seps, children })));
            }
            level = up;
        }
        Tree {
            root: level.pop().map(|(_, n)| n),
            len,
        }
    }

    /// The entries in key order.
    pub fn iter(&self) -> Iter<'_> {
        let mut c = Cursor::default();
        if let Some(r) = self.root.as_deref() {
            c.first(r);
        }
        Iter { cursor: c }
    }

    /// Call `f` with each entry whose key is in `(start, end)`, in key
    /// order, until it returns `false`. An empty or inverted range visits
    /// nothing. Recursive and allocation-free (the depth is a handful of
    /// levels), for short scans.
    pub fn visit(&self, start: Bound<&[u8]>, end: Bound<&[u8]>, mut f: impl FnMut(&Entry) -> bool) {
        let Some(root) = self.root.as_deref() else {
            return;
        };
        let start = match start {
            Bound::Unbounded => None,
            Bound::Included(k) => Some((key_prefix(k), k, true)),
            Bound::Excluded(k) => Some((key_prefix(k), k, false)),
        };
        let end = end.map(|k| (key_prefix(k), k));
        visit_node(root, start, &end, &mut f);
    }

    /// A double-ended iterator over the entries with keys in
    /// `(start, end)` that holds this version (an O(1) clone) and so
    /// outlives `self`.
    pub fn range_owned(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> OwnedRange {
        let mut r = OwnedRange {
            root: self.root.clone(),
            front: Cursor::default(),
            back: Cursor::default(),
            done: true,
        };
        if let Some(root) = &r.root {
            r.front.seek_start(root.clone(), start);
            r.back.seek_end(root.clone(), end);
            r.done = !in_order(r.front.get(), r.back.get());
        }
        r
    }
}

/// [`Tree::visit`] below `n`, from the first entry within `start` (None:
/// the first of `n`); `false` once `f` or the end bound stopped it.
fn visit_node(
    n: &Node,
    start: Option<(u64, &[u8], bool)>,
    end: &Bound<(u64, &[u8])>,
    f: &mut impl FnMut(&Entry) -> bool,
) -> bool {
    match n {
        Node::Leaf(v) => {
            let i = start.map_or(0, |(p, k, inclusive)| {
                v.partition_point(|e| match e.cmp_key(p, k) {
                    Ordering::Less => true,
                    Ordering::Equal => !inclusive,
                    Ordering::Greater => false,
                })
            });
            v[i..].iter().all(|e| within_end(e, end) && f(e))
        }
        Node::Branch { seps, children } => {
            let i = start.map_or(0, |(p, k, _)| child_index(seps, p, k));
            let mut first = start;
            children[i..]
                .iter()
                .all(|c| visit_node(c, first.take(), end, f))
        }
    }
}

/// Whether `front` is at or before `back` (both positioned).
fn in_order(front: Option<&Entry>, back: Option<&Entry>) -> bool {
    match (front, back) {
        (Some(f), Some(b)) => f <= b,
        _ => false,
    }
}

/// Whether `e` is within the upper bound `end` (prefix, key).
#[inline]
fn within_end(e: &Entry, end: &Bound<(u64, &[u8])>) -> bool {
    match end {
        Bound::Unbounded => true,
        Bound::Included((p, k)) => e.cmp_key(*p, k) != Ordering::Greater,
        Bound::Excluded((p, k)) => e.cmp_key(*p, k) == Ordering::Less,
    }
}

/// Sizes of chunks of about [`BULK_FILL`] that add up to `n`, as even as
/// possible (so no chunk but a lone one is under [`MIN`]).
fn even_chunks(n: usize) -> impl Iterator<Item = usize> {
    let chunks = n.div_ceil(BULK_FILL).max(1);
    let (base, extra) = (n / chunks, n % chunks);
    (0..chunks).map(move |i| base + usize::from(i < extra))
}

/// A reference to a node that a cursor can hold: a borrow (`&Node`, for
/// iteration within a borrow of the tree) or a count (`Arc<Node>`, for a
/// cursor that outlives it).
pub(crate) trait NodeRef: Clone {
    fn node(&self) -> &Node;
    fn child(&self, i: usize) -> Self;
}

impl NodeRef for &Node {
    fn node(&self) -> &Node {
        self
    }
    fn child(&self, i: usize) -> Self {
        match self {
            Node::Branch { children, .. } => &children[i],
            Node::Leaf(_) => unreachable!("a leaf has no children"),
        }
    }
}

impl NodeRef for Arc<Node> {
    fn node(&self) -> &Node {
        self
    }
    fn child(&self, i: usize) -> Self {
        match &**self {
            Node::Branch { children, .. } => Arc::clone(&children[i]),
            Node::Leaf(_) => unreachable!("a leaf has no children"),
        }
    }
}

/// A position in a tree: the path from the root to one entry of a leaf.
/// Empty when it is before the first or after the last entry.
pub(crate) struct Cursor<R: NodeRef> {
    stack: Vec<(R, usize)>,
}

impl<R: NodeRef> Default for Cursor<R> {
    fn default() -> Self {
        Cursor { stack: Vec::new() }
    }
}

impl<R: NodeRef> Cursor<R> {
    /// The entry here.
    pub(crate) fn get(&self) -> Option<&Entry> {
        let (n, i) = self.stack.last()?;
        match n.node() {
            Node::Leaf(v) => v.get(*i),
            Node::Branch { .. } => None,
        }
    }

    /// Descend from `root` towards `key`; returns the leaf's entries and
    /// leaves the leaf on the stack with index 0.
    fn descend(&mut self, root: R, prefix: u64, key: &[u8]) {
        self.stack.clear();
        let mut n = root;
        loop {
            let i = match n.node() {
                Node::Branch { seps, .. } => child_index(seps, prefix, key),
                Node::Leaf(_) => {
                    self.stack.push((n, 0));
                    return;
                }
            };
            let c = n.child(i);
            self.stack.push((n, i));
            n = c;
        }
    }

    /// Position at the first entry.
    pub(crate) fn first(&mut self, root: R) {
        self.edge(root, true);
    }

    /// Position at the first entry (`front`) or the last.
    fn edge(&mut self, root: R, front: bool) {
        self.stack.clear();
        let mut n = root;
        loop {
            let len = n.node().len();
            if len == 0 {
                self.stack.clear();
                return;
            }
            let i = if front { 0 } else { len - 1 };
            let leaf = matches!(n.node(), Node::Leaf(_));
            let c = (!leaf).then(|| n.child(i));
            self.stack.push((n, i));
            match c {
                Some(c) => n = c,
                None => return,
            }
        }
    }

    /// Position at the first entry within the lower bound `start`.
    pub(crate) fn seek_start(&mut self, root: R, start: Bound<&[u8]>) {
        let (key, inclusive) = match start {
            Bound::Unbounded => return self.edge(root, true),
            Bound::Included(k) => (k, true),
            Bound::Excluded(k) => (k, false),
        };
        let p = key_prefix(key);
        self.descend(root, p, key);
        let (leaf, i) = self.stack.last_mut().expect("descend leaves a leaf");
        let Node::Leaf(v) = leaf.node() else {
            unreachable!()
        };
        *i = v.partition_point(|e| match e.cmp_key(p, key) {
            Ordering::Less => true,
            Ordering::Equal => !inclusive,
            Ordering::Greater => false,
        });
        if *i == v.len() {
            self.step_leaf(true);
        }
    }

    /// Position at the last entry within the upper bound `end`.
    pub(crate) fn seek_end(&mut self, root: R, end: Bound<&[u8]>) {
        let (key, inclusive) = match end {
            Bound::Unbounded => return self.edge(root, false),
            Bound::Included(k) => (k, true),
            Bound::Excluded(k) => (k, false),
        };
        let p = key_prefix(key);
        self.descend(root, p, key);
        let (leaf, i) = self.stack.last_mut().expect("descend leaves a leaf");
        let Node::Leaf(v) = leaf.node() else {
            unreachable!()
        };
        let n = v.partition_point(|e| match e.cmp_key(p, key) {
            Ordering::Less => true,
            Ordering::Equal => inclusive,
            Ordering::Greater => false,
        });
        match n.checked_sub(1) {
            Some(j) => *i = j,
            None => {
                self.step_leaf(false);
            }
        }
    }

    /// Move to the next entry (or past the end).
    pub(crate) fn advance(&mut self) {
        let Some((n, i)) = self.stack.last_mut() else {
            return;
        };
        if *i + 1 < n.node().len() {
            *i += 1;
        } else {
            self.step_leaf(true);
        }
    }

    /// Move to the previous entry (or before the start).
    pub(crate) fn retreat(&mut self) {
        let Some((_, i)) = self.stack.last_mut() else {
            return;
        };
        if *i > 0 {
            *i -= 1;
        } else {
            self.step_leaf(false);
        }
    }

    /// Move to the first entry of the next leaf (`forward`) or the last
    /// entry of the previous one; empties the stack at either end.
    fn step_leaf(&mut self, forward: bool) {
        self.stack.pop();
        loop {
            let Some((n, i)) = self.stack.last_mut() else {
                return;
            };
            if forward && *i + 1 < n.node().len() {
                *i += 1;
                break;
            }
            if !forward && *i > 0 {
                *i -= 1;
                break;
            }
            self.stack.pop();
        }
        loop {
            let (n, i) = self.stack.last().expect("not empty");
            let c = n.child(*i);
            let len = c.node().len();
            let j = if forward { 0 } else { len - 1 };
            let leaf = matches!(c.node(), Node::Leaf(_));
            self.stack.push((c, j));
            if leaf {
                return;
            }
        }
    }
}

/// Iterator over a borrowed tree, in key order ([`Tree::iter`]).
pub struct Iter<'a> {
    cursor: Cursor<&'a Node>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a Entry;

    fn next(&mut self) -> Option<&'a Entry> {
        let (n, i) = self.cursor.stack.last()?;
        let e = match *n {
            Node::Leaf(v) => v.get(*i)?,
            Node::Branch { .. } => return None,
        };
        self.cursor.advance();
        Some(e)
    }
}

/// A double-ended range over one version of a tree, which it holds
/// ([`Tree::range_owned`]). The two ends never pass each other.
pub struct OwnedRange {
    root: Option<Arc<Node>>,
    front: Cursor<Arc<Node>>,
    back: Cursor<Arc<Node>>,
    done: bool,
}

impl OwnedRange {
    /// Call `f` with the next entry from the front, if any, and advance.
    pub fn next_with<T>(&mut self, f: impl FnOnce(&Entry) -> T) -> Option<T> {
        if self.done {
            return None;
        }
        let e = self.front.get()?;
        let last = self.back.get().is_some_and(|b| b.same(&e.data));
        let r = f(e);
        if last {
            self.done = true;
        } else {
            self.front.advance();
        }
        Some(r)
    }

    /// Call `f` with the next entry from the back, if any, and retreat.
    pub fn next_back_with<T>(&mut self, f: impl FnOnce(&Entry) -> T) -> Option<T> {
        if self.done {
            return None;
        }
        let e = self.back.get()?;
        let last = self.front.get().is_some_and(|b| b.same(&e.data));
        let r = f(e);
        if last {
            self.done = true;
        } else {
            self.back.retreat();
        }
        Some(r)
    }

    /// Move the front to the first entry `>= key` (not before where the
    /// back end is); entries before it are skipped, and a seek backwards
    /// from the front's position goes back (within the range the back
    /// bound allows).
    pub fn seek(&mut self, key: &[u8], lower: Bound<&[u8]>) {
        let Some(root) = &self.root else {
            return;
        };
        let start = match lower {
            Bound::Included(l) if l > key => Bound::Included(l),
            Bound::Excluded(l) if l >= key => Bound::Excluded(l),
            _ => Bound::Included(key),
        };
        self.front.seek_start(root.clone(), start);
        self.done = !in_order(self.front.get(), self.back.get());
    }

    /// Move the back to the last entry `<= key` (mirror of
    /// [`OwnedRange::seek`]).
    pub fn seek_back(&mut self, key: &[u8], upper: Bound<&[u8]>) {
        let Some(root) = &self.root else {
            return;
        };
        let end = match upper {
            Bound::Included(u) if u < key => Bound::Included(u),
            Bound::Excluded(u) if u <= key => Bound::Excluded(u),
            _ => Bound::Included(key),
        };
        self.back.seek_end(root.clone(), end);
        self.done = !in_order(self.front.get(), self.back.get());
    }
}

#[cfg(test)]
mod model {
    //! The tree against a `BTreeMap` model, with versions (snapshots)
    //! taken and dropped at random points: every kept version must still
    //! read exactly as the model did when it was taken.
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    type Model = BTreeMap<Vec<u8>, Vec<u8>>;

    #[derive(Debug, Clone)]
    enum Op {
        Put(u16, u8),
        Delete(u16),
        Snapshot,
        DropSnapshot(usize),
        Check(u16, u16, bool, bool),
        Rebuild,
    }

    fn key(k: u16) -> Vec<u8> {
        // Keys that share their 8-byte prefix, and short ones.
        if k % 3 == 0 {
            format!("shared-prefix-{k:05}").into_bytes()
        } else {
            k.to_be_bytes().to_vec()
        }
    }

    fn op(keys: u16) -> impl Strategy<Value = Op> {
        prop_oneof![
            10 => (0..keys, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
            6 => (0..keys).prop_map(Op::Delete),
            1 => Just(Op::Snapshot),
            1 => (0usize..4).prop_map(Op::DropSnapshot),
            2 => (0..keys, 0..keys, any::<bool>(), any::<bool>())
                .prop_map(|(a, b, i, j)| Op::Check(a, b, i, j)),
            1 => Just(Op::Rebuild),
        ]
    }

    fn bound(k: &[u8], inclusive: bool) -> Bound<&[u8]> {
        if inclusive {
            Bound::Included(k)
        } else {
            Bound::Excluded(k)
        }
    }

    /// Every read a tree has, against the model.
    fn check(
        t: &Tree,
        m: &Model,
        a: &[u8],
        b: &[u8],
        ia: bool,
        ib: bool,
    ) -> Result<(), TestCaseError> {
        prop_assert_eq!(t.len(), m.len());
        let all: Vec<_> = t
            .iter()
            .map(|e| (e.key().to_vec(), e.value().to_vec()))
            .collect();
        let want: Vec<_> = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        prop_assert_eq!(&all, &want);
        for (k, v) in m.iter().take(5) {
            prop_assert_eq!(t.get(k).map(|e| e.value()), Some(&v[..]));
        }
        prop_assert!(t.get(b"absent-key-zz").is_none());
        let (lo, hi) = (bound(a, ia), bound(b, ib));
        let want: Vec<Vec<u8>> = m
            .iter()
            .filter(|(k, _)| {
                let after = match lo {
                    Bound::Included(l) => &k[..] >= l,
                    Bound::Excluded(l) => &k[..] > l,
                    Bound::Unbounded => true,
                };
                let before = match hi {
                    Bound::Included(h) => &k[..] <= h,
                    Bound::Excluded(h) => &k[..] < h,
                    Bound::Unbounded => true,
                };
                after && before
            })
            .map(|(k, _)| k.clone())
            .collect();
        let mut got = Vec::new();
        t.visit(lo, hi, |e| {
            got.push(e.key().to_vec());
            true
        });
        prop_assert_eq!(&got, &want);
        let mut r = t.range_owned(lo, hi);
        let mut fwd = Vec::new();
        while let Some(k) = r.next_with(|e| e.key().to_vec()) {
            fwd.push(k);
        }
        prop_assert_eq!(&fwd, &want);
        let mut r = t.range_owned(lo, hi);
        let mut rev = Vec::new();
        while let Some(k) = r.next_back_with(|e| e.key().to_vec()) {
            rev.push(k);
        }
        rev.reverse();
        prop_assert_eq!(&rev, &want);
        // Both ends at once, alternating: every key exactly once.
        let mut r = t.range_owned(lo, hi);
        let (mut front, mut back) = (Vec::new(), Vec::new());
        loop {
            let f = r.next_with(|e| e.key().to_vec());
            let b = r.next_back_with(|e| e.key().to_vec());
            if f.is_none() && b.is_none() {
                break;
            }
            front.extend(f);
            back.extend(b);
        }
        back.reverse();
        front.extend(back);
        prop_assert_eq!(&front, &want);
        Ok(())
    }

    fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
        let mut t = Tree::default();
        let mut m = Model::new();
        let mut snaps: Vec<(Tree, Model)> = Vec::new();
        for op in ops {
            match op {
                Op::Put(k, v) => {
                    let val = vec![v; (v % 5) as usize];
                    let old = t.insert(Entry::new(&key(k), &val));
                    let want = m.insert(key(k), val);
                    prop_assert_eq!(old.map(|e| e.value().to_vec()), want);
                }
                Op::Delete(k) => {
                    let old = t.remove(&key(k));
                    let want = m.remove(&key(k));
                    prop_assert_eq!(old.map(|e| e.value().to_vec()), want);
                }
                Op::Snapshot => snaps.push((t.clone(), m.clone())),
                Op::DropSnapshot(i) => {
                    if !snaps.is_empty() {
                        let i = i % snaps.len();
                        snaps.remove(i);
                    }
                }
                Op::Check(a, b, ia, ib) => {
                    check(&t, &m, &key(a), &key(b), ia, ib)?;
                    for (s, sm) in &snaps {
                        check(s, sm, &key(a), &key(b), ia, ib)?;
                    }
                }
                Op::Rebuild => {
                    t = Tree::from_sorted(t.iter().cloned().collect());
                }
            }
        }
        check(&t, &m, &key(0), &key(u16::MAX), true, true)?;
        for (s, sm) in &snaps {
            check(s, sm, b"", &key(u16::MAX), true, false)?;
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Few keys: small trees, many replacements and empty ranges.
        #[test]
        fn small_trees_match_a_model(ops in proptest::collection::vec(op(40), 1..300)) {
            run(ops)?;
        }

        /// Enough keys for three levels, splits and merges.
        #[test]
        fn deep_trees_match_a_model(ops in proptest::collection::vec(op(3000), 1..3000)) {
            run(ops)?;
        }
    }

    #[test]
    fn sequential_load_then_delete_everything_keeps_the_shape() {
        let mut t = Tree::default();
        for i in 0u32..20_000 {
            t.insert(Entry::new(&i.to_be_bytes(), b"v"));
        }
        let kept = t.clone();
        for i in (0u32..20_000).rev().step_by(2) {
            assert!(t.remove(&i.to_be_bytes()).is_some());
        }
        assert_eq!(t.len(), 10_000);
        assert_eq!(kept.len(), 20_000);
        assert_eq!(kept.iter().count(), 20_000);
        for i in 0u32..20_000 {
            t.remove(&i.to_be_bytes());
        }
        assert!(t.is_empty() && t.root().is_none());
        assert_eq!(
            kept.get(&7u32.to_be_bytes()).map(|e| e.value()),
            Some(&b"v"[..])
        );
    }

    #[test]
    fn a_write_copies_only_nodes_a_snapshot_shares() {
        let mut t = Tree::from_sorted(
            (0u32..10_000)
                .map(|i| Entry::new(&i.to_be_bytes(), b"v"))
                .collect(),
        );
        // No snapshot: the root stays the same allocation.
        let before = Arc::as_ptr(t.root().expect("root"));
        t.insert(Entry::new(&5u32.to_be_bytes(), b"w"));
        assert_eq!(before, Arc::as_ptr(t.root().expect("root")));
        // With a snapshot: one path is copied, the rest is shared.
        let snap = t.clone();
        t.insert(Entry::new(&6u32.to_be_bytes(), b"w"));
        let (mut shared, mut total) = (0, 0);
        let mut snap_nodes = std::collections::HashSet::new();
        Node::walk(
            snap.root().expect("root"),
            &mut |n| snap_nodes.insert(Arc::as_ptr(n)),
            &mut |_| {},
        );
        Node::walk(
            t.root().expect("root"),
            &mut |n| {
                total += 1;
                if snap_nodes.contains(&Arc::as_ptr(n)) {
                    shared += 1;
                    return false;
                }
                true
            },
            &mut |_| {},
        );
        // Three levels: root, one branch, one leaf copied.
        let copied = total - shared;
        assert!(copied <= 3, "copied {copied} nodes");
        assert_eq!(
            snap.get(&6u32.to_be_bytes()).map(|e| e.value()),
            Some(&b"v"[..])
        );
    }
}
