//! The clusterloader2 `load` profile's arithmetic (testing/load/config.yaml): from the
//! node count and its parameters, the namespaces, the small, medium and big Deployments
//! per namespace (1/2, 1/4 and 1/4 of the pods, less the StatefulSets and Jobs the profile
//! also runs, which kapi-perf does not create), the Services (one per two Deployments),
//! and the phase durations: pods are created over totalPods/throughput seconds, scaled
//! over a quarter of it, deleted over totalPods/deleteThroughput.

use crate::options::MixedArgs;

/// A deployment size class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    /// `small`, `medium` or `big`: names are `<class>-deployment-<i>`, `<class>-service-<i>`.
    pub class: &'static str,
    pub size: usize,
    pub deployments: usize,
    pub services: usize,
}

/// What one run replays.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub namespaces: usize,
    pub total_pods: usize,
    pub groups: [Group; 3],
    /// Seconds over which the Deployments are created (RandomizedSaturationTimeLimited).
    pub saturation_s: f64,
    /// Seconds over which they are scaled (RandomizedScalingTimeLimited).
    pub scaling_s: f64,
    /// Seconds over which they are deleted (RandomizedDeletionTimeLimited).
    pub deletion_s: f64,
    /// Rate of the Services, ConfigMaps and Secrets (tuning set `default`).
    pub qps: f64,
}

fn per_ns(pods_per_ns: usize, divisor: usize, minus: usize) -> usize {
    (pods_per_ns / divisor.max(1)).saturating_sub(minus)
}

impl Profile {
    /// The profile of `args`.
    pub fn of(args: &MixedArgs) -> Profile {
        let nodes = args.nodes.max(1);
        let npn = nodes.min(args.nodes_per_namespace.max(1));
        let namespaces = (nodes / npn).max(1);
        let total_pods = namespaces * npn * args.pods_per_node;
        let pods_per_ns = total_pods / namespaces;
        // The config takes 1 StatefulSet and 1 Job of small and medium, 1 Job of big.
        let big = per_ns(pods_per_ns, 4 * args.big_size, 1);
        let medium = per_ns(pods_per_ns, 4 * args.medium_size, 2);
        let small = per_ns(pods_per_ns, 2 * args.small_size, 2);
        let group = |class, size, deployments: usize| Group {
            class,
            size,
            deployments,
            services: deployments.div_ceil(2),
        };
        let throughput = args.throughput.max(1e-9);
        let saturation_s = total_pods as f64 / throughput;
        let delete = args.delete_throughput.unwrap_or(args.throughput).max(1e-9);
        Profile {
            namespaces,
            total_pods,
            groups: [
                group("small", args.small_size, small),
                group("medium", args.medium_size, medium),
                group("big", args.big_size, big),
            ],
            saturation_s,
            scaling_s: saturation_s / 4.0,
            deletion_s: total_pods as f64 / delete,
            qps: args.qps.unwrap_or(if nodes <= 500 { 10.0 } else { 100.0 }),
        }
    }

    /// Deployments in one namespace.
    pub fn deployments_per_ns(&self) -> usize {
        self.groups.iter().map(|g| g.deployments).sum()
    }

    /// Pods the Deployments hold at creation, over all namespaces.
    pub fn deployment_pods(&self) -> usize {
        self.namespaces * self.groups.iter().map(|g| g.size * g.deployments).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{Cli, Command, Workload};
    use clap::Parser;

    fn profile(flags: &[&str]) -> Profile {
        let cli = Cli::parse_from(["kapi-perf", "mixed"].iter().chain(flags));
        let Command::Run(Workload::Mixed(args)) = cli.command else { panic!("not mixed") };
        Profile::of(&args)
    }

    #[test]
    fn upstream_defaults_at_100_nodes() {
        let p = profile(&[]);
        assert_eq!((p.namespaces, p.total_pods), (1, 3000));
        // 3000 pods: 3000/1000-1 big, 3000/120-2 medium, 3000/10-2 small.
        let counts: Vec<_> = p.groups.iter().map(|g| (g.deployments, g.services)).collect();
        assert_eq!(counts, [(298, 149), (23, 12), (2, 1)]);
        assert_eq!((p.saturation_s, p.scaling_s, p.deletion_s, p.qps), (300.0, 75.0, 300.0, 10.0));
    }

    #[test]
    fn scaled_down_and_many_namespaces() {
        let p = profile(&["--nodes", "10", "--pods-per-node", "20", "--medium-size", "10"]);
        assert_eq!((p.namespaces, p.total_pods), (1, 200));
        assert_eq!(p.groups[0].deployments, 18);
        assert_eq!(p.groups[1].deployments, 3);
        assert_eq!(p.groups[2].deployments, 0);
        let p = profile(&["--nodes", "1000", "--throughput", "50"]);
        assert_eq!((p.namespaces, p.total_pods, p.qps), (10, 30_000, 100.0));
        assert_eq!(p.saturation_s, 600.0);
    }
}
