//! The Node authorizer's graph (upstream's node authorizer graph, built our own way):
//! vertices for nodes, pods and what pods use (Secrets, ConfigMaps, PVCs, PVs,
//! ServiceAccounts, ResourceClaims), VolumeAttachments and ResourceSlices; every edge
//! points toward a node: `pod -> node`, `secret|configmap|pvc|serviceaccount|claim ->
//! pod`, `pv -> pvc`, `secret -> pv`, `volumeattachment -> node`, `slice -> node`. The
//! levels make it acyclic (at most four edges from any vertex to a node).
//!
//! Each vertex keeps, besides its edges, the number of paths from it to each node it
//! reaches (`reach`), so a decision is two hash lookups: no walk, no object read. An edge
//! `u -> w` added (removed) adds (subtracts) `w`'s reach to `u` and to every vertex with a
//! path to `u`, so a pod's event costs O(its references × what reaches them), never
//! O(all pods).
//!
//! Edges come from *sources*: the stored objects (pods, PVCs, PVs, VolumeAttachments,
//! ResourceSlices, by storage key) whose fields name them. [`NodeGraph::set_source`]
//! replaces what one source contributes (the difference is applied, new edges first),
//! [`NodeGraph::remove_source`] takes it out.
//!
//! Invariants: an edge's multiplicity is the number of sources contributing it; a vertex
//! exists only while it has an edge (the last one gone, it is removed: memory follows
//! the live objects); `reach[n]` of every vertex is the number of paths to node `n`
//! (a node reaches itself once); vertex ids are reused only after their vertex is gone,
//! when nothing refers to them.

use std::collections::HashMap;

/// The kind of object a vertex stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VKind {
    Node,
    Pod,
    Secret,
    ConfigMap,
    Pvc,
    Pv,
    ServiceAccount,
    Claim,
    VolumeAttachment,
    Slice,
}

impl VKind {
    fn tag(self) -> char {
        match self {
            VKind::Node => 'n',
            VKind::Pod => 'p',
            VKind::Secret => 's',
            VKind::ConfigMap => 'c',
            VKind::Pvc => 'v',
            VKind::Pv => 'V',
            VKind::ServiceAccount => 'a',
            VKind::Claim => 'r',
            VKind::VolumeAttachment => 'A',
            VKind::Slice => 'S',
        }
    }
}

/// The namespace of a Secret a PersistentVolume names without one: it matches a
/// request in any namespace (no namespace is named `*`).
pub const ANY_NAMESPACE: &str = "*";

/// One vertex's identity: kind, namespace ("" for cluster-scoped objects) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VKey {
    pub kind: VKind,
    pub namespace: String,
    pub name: String,
}

impl VKey {
    pub fn new(kind: VKind, namespace: &str, name: &str) -> VKey {
        VKey { kind, namespace: namespace.to_string(), name: name.to_string() }
    }

    fn id_key(&self) -> String {
        id_key(self.kind, &self.namespace, &self.name)
    }
}

/// The index key of a vertex (names and namespaces hold no `/`).
fn id_key(kind: VKind, namespace: &str, name: &str) -> String {
    let mut k = String::with_capacity(namespace.len() + name.len() + 3);
    k.push(kind.tag());
    k.push('/');
    k.push_str(namespace);
    k.push('/');
    k.push_str(name);
    k
}

/// An edge as a source names it: `from` is needed by `to`.
pub type EdgeKey = (VKey, VKey);

type Vid = u32;
/// Per neighbour (or per node for `reach`): a count.
type Counts = HashMap<Vid, u32>;

#[derive(Debug, Default)]
struct Vertex {
    key: String,
    /// Edges out (toward nodes), with multiplicity.
    out: Counts,
    /// Edges in, with multiplicity.
    inc: Counts,
    /// Paths to each node reached.
    reach: Counts,
}

impl Vertex {
    fn is_bare(&self) -> bool {
        self.out.is_empty() && self.inc.is_empty()
    }
}

/// The graph (see the module doc).
#[derive(Debug, Default)]
pub struct NodeGraph {
    vertices: Vec<Option<Vertex>>,
    free: Vec<Vid>,
    ids: HashMap<String, Vid>,
    /// What each source contributes, as vertex id pairs.
    sources: HashMap<String, Box<[(Vid, Vid)]>>,
    edges: usize,
}

impl NodeGraph {
    /// Whether the object `kind` `namespace/name` has a path to node `node`.
    pub fn reaches(&self, kind: VKind, namespace: &str, name: &str, node: &str) -> bool {
        let Some(&n) = self.ids.get(&id_key(VKind::Node, "", node)) else { return false };
        self.ids
            .get(&id_key(kind, namespace, name))
            .and_then(|&v| self.vertex(v))
            .is_some_and(|v| v.reach.contains_key(&n))
    }

    /// Replace what `source` contributes with `edges`.
    pub fn set_source(&mut self, source: &str, edges: &[EdgeKey]) {
        let mut new: Vec<(Vid, Vid)> =
            edges.iter().map(|(f, t)| (self.vertex_id(f), self.vertex_id(t))).collect();
        new.sort_unstable();
        new.dedup();
        let old = self.sources.remove(source).unwrap_or_default();
        // Both sorted: the difference by binary search. New edges first, so a vertex
        // both sets share is never removed and made again.
        for &(f, t) in new.iter().filter(|e| old.binary_search(e).is_err()) {
            self.add_edge(f, t);
        }
        for &(f, t) in old.iter().filter(|e| new.binary_search(e).is_err()) {
            self.remove_edge(f, t);
        }
        if !new.is_empty() {
            self.sources.insert(source.to_string(), new.into_boxed_slice());
        }
    }

    /// Take out what `source` contributes.
    pub fn remove_source(&mut self, source: &str) {
        if let Some(old) = self.sources.remove(source) {
            for &(f, t) in old.iter() {
                self.remove_edge(f, t);
            }
        }
    }

    /// The sources whose keys start with `prefix` (one resource's objects).
    pub fn sources_under(&self, prefix: &str) -> Vec<String> {
        self.sources.keys().filter(|k| k.starts_with(prefix)).cloned().collect()
    }

    /// Vertices held.
    pub fn vertex_count(&self) -> usize {
        self.ids.len()
    }

    /// Distinct edges held.
    pub fn edge_count(&self) -> usize {
        self.edges
    }

    /// Sources contributing edges.
    pub fn source_count(&self) -> usize {
        self.sources.len()
    }

    fn vertex(&self, v: Vid) -> Option<&Vertex> {
        self.vertices.get(v as usize)?.as_ref()
    }

    fn vertex_mut(&mut self, v: Vid) -> &mut Vertex {
        self.vertices[v as usize].as_mut().expect("a vertex with edges or a source exists")
    }

    /// The id of `key`'s vertex, made if it is new (a node reaches itself).
    fn vertex_id(&mut self, key: &VKey) -> Vid {
        let k = key.id_key();
        if let Some(&v) = self.ids.get(&k) {
            return v;
        }
        let v = match self.free.pop() {
            Some(v) => v,
            None => {
                self.vertices.push(None);
                Vid::try_from(self.vertices.len() - 1).unwrap_or(Vid::MAX)
            }
        };
        let mut vertex = Vertex { key: k.clone(), ..Default::default() };
        if key.kind == VKind::Node {
            vertex.reach.insert(v, 1);
        }
        self.vertices[v as usize] = Some(vertex);
        self.ids.insert(k, v);
        v
    }

    fn add_edge(&mut self, from: Vid, to: Vid) {
        let first = bump(&mut self.vertex_mut(from).out, to, 1);
        bump(&mut self.vertex_mut(to).inc, from, 1);
        if first {
            self.edges += 1;
        }
        let delta: Vec<(Vid, i64)> =
            self.vertex_mut(to).reach.iter().map(|(&n, &c)| (n, i64::from(c))).collect();
        self.propagate(from, &delta);
    }

    fn remove_edge(&mut self, from: Vid, to: Vid) {
        if self.vertex(from).is_none_or(|v| !v.out.contains_key(&to)) {
            return;
        }
        let delta: Vec<(Vid, i64)> =
            self.vertex_mut(to).reach.iter().map(|(&n, &c)| (n, -i64::from(c))).collect();
        self.propagate(from, &delta);
        if bump(&mut self.vertex_mut(from).out, to, -1) {
            self.edges -= 1;
        }
        bump(&mut self.vertex_mut(to).inc, from, -1);
        self.collect(from);
        self.collect(to);
    }

    /// Add `delta` (paths per node) to `v`'s reach and to every vertex with a path to
    /// `v`, once per path. Depth is bounded by the graph's levels.
    fn propagate(&mut self, v: Vid, delta: &[(Vid, i64)]) {
        if delta.is_empty() {
            return;
        }
        let vertex = self.vertex_mut(v);
        for &(n, d) in delta {
            bump(&mut vertex.reach, n, d);
        }
        let parents: Vec<(Vid, u32)> = vertex.inc.iter().map(|(&p, &m)| (p, m)).collect();
        for (p, m) in parents {
            let scaled: Vec<(Vid, i64)> =
                delta.iter().map(|&(n, d)| (n, d * i64::from(m))).collect();
            self.propagate(p, &scaled);
        }
    }

    /// Remove `v` if it has no edge left.
    fn collect(&mut self, v: Vid) {
        let Some(vertex) = self.vertices.get_mut(v as usize) else { return };
        if vertex.as_ref().is_some_and(Vertex::is_bare) {
            let gone = vertex.take().expect("checked above");
            self.ids.remove(&gone.key);
            self.free.push(v);
        }
    }
}

/// Add `d` to `counts[k]`, dropping it at zero. True when the entry appeared or went.
fn bump(counts: &mut Counts, k: Vid, d: i64) -> bool {
    let now = i64::from(counts.get(&k).copied().unwrap_or(0)) + d;
    let now = u32::try_from(now.max(0)).unwrap_or(u32::MAX);
    if now == 0 { counts.remove(&k).is_some() } else { counts.insert(k, now).is_none() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(kind: VKind, ns: &str, name: &str) -> VKey {
        VKey::new(kind, ns, name)
    }

    /// A pod's edges: bound to `node`, using `secrets` in its namespace.
    fn pod(name: &str, node: &str, secrets: &[&str]) -> Vec<EdgeKey> {
        let p = k(VKind::Pod, "ns", name);
        let mut e = vec![(p.clone(), k(VKind::Node, "", node))];
        e.extend(secrets.iter().map(|s| (k(VKind::Secret, "ns", s), p.clone())));
        e
    }

    #[test]
    fn adding_updating_and_deleting_a_pod_moves_its_edges() {
        let mut g = NodeGraph::default();
        g.set_source("/pods/ns/p", &pod("p", "n1", &["a", "b"]));
        assert!(g.reaches(VKind::Pod, "ns", "p", "n1"));
        assert!(g.reaches(VKind::Secret, "ns", "a", "n1"));
        assert!(!g.reaches(VKind::Secret, "ns", "a", "n2"));
        assert!(!g.reaches(VKind::Secret, "other", "a", "n1"), "namespaces differ");
        g.set_source("/pods/ns/p", &pod("p", "n1", &["b", "c"]));
        assert!(!g.reaches(VKind::Secret, "ns", "a", "n1"), "no longer used");
        assert!(g.reaches(VKind::Secret, "ns", "b", "n1"));
        assert!(g.reaches(VKind::Secret, "ns", "c", "n1"));
        g.remove_source("/pods/ns/p");
        assert!(!g.reaches(VKind::Secret, "ns", "b", "n1"));
        assert!(!g.reaches(VKind::Pod, "ns", "p", "n1"));
        assert_eq!((g.vertex_count(), g.edge_count(), g.source_count()), (0, 0, 0));
    }

    #[test]
    fn a_pod_moved_between_nodes_in_an_update_takes_its_references_along() {
        let mut g = NodeGraph::default();
        g.set_source("/pods/ns/p", &pod("p", "n1", &["s"]));
        g.set_source("/pods/ns/p", &pod("p", "n2", &["s"]));
        assert!(g.reaches(VKind::Secret, "ns", "s", "n2"));
        assert!(g.reaches(VKind::Pod, "ns", "p", "n2"));
        assert!(!g.reaches(VKind::Secret, "ns", "s", "n1"));
        assert!(!g.reaches(VKind::Pod, "ns", "p", "n1"));
        assert_eq!(g.vertex_count(), 3, "n1's vertex went with its last edge");
    }

    #[test]
    fn a_secret_shared_by_pods_on_two_nodes_stays_reachable_from_the_one_left() {
        let mut g = NodeGraph::default();
        g.set_source("/pods/ns/p1", &pod("p1", "n1", &["shared"]));
        g.set_source("/pods/ns/p2", &pod("p2", "n2", &["shared"]));
        g.set_source("/pods/ns/p3", &pod("p3", "n1", &["shared"]));
        g.remove_source("/pods/ns/p2");
        assert!(!g.reaches(VKind::Secret, "ns", "shared", "n2"));
        assert!(g.reaches(VKind::Secret, "ns", "shared", "n1"));
        g.remove_source("/pods/ns/p1");
        assert!(g.reaches(VKind::Secret, "ns", "shared", "n1"), "p3 still uses it on n1");
        g.remove_source("/pods/ns/p3");
        assert!(!g.reaches(VKind::Secret, "ns", "shared", "n1"));
        assert_eq!(g.vertex_count(), 0);
    }

    #[test]
    fn a_pvc_pv_secret_chain_reaches_the_node_of_the_pod_using_the_claim() {
        let mut g = NodeGraph::default();
        let pvc = k(VKind::Pvc, "ns", "data");
        let pv = k(VKind::Pv, "", "vol");
        let secret = k(VKind::Secret, "ns", "csi");
        // The PV and the claim's binding arrive before the pod.
        g.set_source("/pv/vol", &[(secret.clone(), pv.clone())]);
        g.set_source("/pvc/ns/data", &[(pv.clone(), pvc.clone())]);
        assert!(!g.reaches(VKind::Secret, "ns", "csi", "n1"));
        let p = k(VKind::Pod, "ns", "p");
        g.set_source("/pods/ns/p", &[(p.clone(), k(VKind::Node, "", "n1")), (pvc, p)]);
        for (kind, ns, name) in
            [(VKind::Pvc, "ns", "data"), (VKind::Pv, "", "vol"), (VKind::Secret, "ns", "csi")]
        {
            assert!(g.reaches(kind, ns, name, "n1"), "{kind:?} {name}");
        }
        // The claim unbound: the volume and its secret are no longer reached.
        g.set_source("/pvc/ns/data", &[]);
        assert!(!g.reaches(VKind::Pv, "", "vol", "n1"));
        assert!(!g.reaches(VKind::Secret, "ns", "csi", "n1"));
        assert!(g.reaches(VKind::Pvc, "ns", "data", "n1"));
        // Bound again, then the pod goes: nothing of the chain is reached.
        g.set_source("/pvc/ns/data", &[(pv, k(VKind::Pvc, "ns", "data"))]);
        assert!(g.reaches(VKind::Secret, "ns", "csi", "n1"));
        g.remove_source("/pods/ns/p");
        assert!(!g.reaches(VKind::Secret, "ns", "csi", "n1"));
        g.remove_source("/pvc/ns/data");
        g.remove_source("/pv/vol");
        assert_eq!((g.vertex_count(), g.edge_count()), (0, 0));
    }

    #[test]
    fn a_secret_used_directly_and_through_a_volume_counts_both_paths() {
        let mut g = NodeGraph::default();
        let p = k(VKind::Pod, "ns", "p");
        let pvc = k(VKind::Pvc, "ns", "c");
        let pv = k(VKind::Pv, "", "v");
        let s = k(VKind::Secret, "ns", "s");
        g.set_source("/pv/v", &[(s.clone(), pv.clone())]);
        g.set_source("/pvc/ns/c", &[(pv, pvc.clone())]);
        g.set_source(
            "/pods/ns/p",
            &[(p.clone(), k(VKind::Node, "", "n1")), (pvc, p.clone()), (s, p)],
        );
        g.remove_source("/pv/v");
        assert!(g.reaches(VKind::Secret, "ns", "s", "n1"), "the pod still names it");
        g.remove_source("/pods/ns/p");
        assert!(!g.reaches(VKind::Secret, "ns", "s", "n1"));
    }

    #[test]
    fn sources_under_a_prefix_are_one_resources_objects() {
        let mut g = NodeGraph::default();
        g.set_source("/pods/ns/p", &pod("p", "n1", &[]));
        g.set_source("/pvc/ns/c", &[(k(VKind::Pv, "", "v"), k(VKind::Pvc, "ns", "c"))]);
        g.set_source("/pods/ns/unbound", &[]);
        assert_eq!(g.sources_under("/pods/"), vec!["/pods/ns/p".to_string()]);
    }
}
