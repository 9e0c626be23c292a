import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Listr } from "listr2";
import type { PipelineContext } from "./context.ts";
import { archNamed, DEFAULT_ARCH } from "../core/arch.ts";
import { BronzeError, EXIT_FAILURE, EXIT_USAGE, InputError } from "../core/errors.ts";
import { removeOrphans } from "../core/ownership.ts";
import { enforceExtensionPolicy, imageExtension, treeExtension, type ResolvedExtension } from "../extensions/assemble.ts";
import { pullExtension } from "../extensions/pull.ts";
import { extensionLayer, modulesIndexLayer, type LayerArtifact } from "../extensions/layers.ts";
import { imageGate, imageSysctlText, kernelConfigGate, type HardeningReport } from "../harden/build-gate.ts";
import { appendLayers, buildInitramfs, type InitramfsArtifact } from "../initramfs/build.ts";
import { buildKernel, type KernelArtifact } from "../kernel/build.ts";
import { removeLeftoverKeys } from "../kernel/signing-key.ts";
import type { SuppliedKey } from "../kernel/supplied-key.ts";
import { buildPackage, type PackageArtifact } from "../pkgs/build.ts";
import type { PackageDef } from "../pkgs/schema.ts";
import type { RegistryClient } from "../registry/client.ts";
import type { Reference } from "../registry/reference.ts";
import type { ReportInput } from "../report/html.ts";
import { buildRootfs, imagePaths, type RootfsArtifact, type RootfsSbom } from "../rootfs/build.ts";
import { imageSbom } from "../sbom/components.ts";
import { buildUki, type UkiArtifact, type UkiInputs } from "../uki/build.ts";
import { JobBudget, runGraph, type GraphEvents, type GraphNode, type NodeOutcome } from "./graph.ts";
import type { BuildPlan } from "./plan.ts";

/** What the step graph made: every artifact the outputs are written from. */
export interface StepResults {
  packages: ReadonlyMap<string, PackageArtifact>;
  /** the packages of the root filesystem, in build order */
  rootPackages: { def: PackageDef; artifact: PackageArtifact }[];
  /** init, as the initramfs holds it */
  initBinary: string;
  kernel: KernelArtifact;
  rootfs: RootfsArtifact;
  sbom: RootfsSbom;
  initramfs: InitramfsArtifact;
  uki: UkiArtifact;
  hardening: HardeningReport;
  extensions?: ResolvedExtension[];
  layers: LayerArtifact[];
  /** each node's start and duration, and whether it was served from the cache */
  timeline: ReportInput["timeline"];
}

/** What the steps need of a build's options. */
export interface StepOptions {
  /** sign modules with the user's key instead of an ephemeral one */
  moduleSigningKey?: SuppliedKey;
  /** build steps that may run at once (default: the number of cores) */
  jobs?: number;
  /** how to reach a registry, for extensions named by registry reference */
  connect?: (ref: Reference) => Promise<RegistryClient>;
  /** measured boot: sign the UKI's predicted PCR 11 (.pcrsig) */
  pcrSigner?: UkiInputs["pcrSigner"];
  /**
   * the job budget of builds run at once in one process (one per architecture), instead of this build's
   * own: their steps share it; their progress is then printed line by line, as two views cannot share a terminal
   */
  sharedBudget?: JobBudget;
}

/** What each node of the step graph gives the nodes that name it as a dependency. */
interface NodeArtifacts {
  [pkg: `package ${string}`]: PackageArtifact;
  kernel: KernelArtifact;
  rootfs: { rootfs: RootfsArtifact; sbom: RootfsSbom };
  extensions: { extensions: ResolvedExtension[]; layers: LayerArtifact[] };
  initramfs: InitramfsArtifact;
  hardening: HardeningReport;
  uki: UkiArtifact;
}
type NodeId = keyof NodeArtifacts;

/** A node's view of the graph: the artifacts of the nodes it depends on, and of no other. */
interface NodeInput {
  of<D extends NodeId>(id: D): NodeArtifacts[D];
}

const packageNode = (name: string): `package ${string}` => `package ${name}`;

/** The path of the init binary inside the init package, copied to /init in the initramfs. */
const INIT_IN_PACKAGE = "usr/sbin/init";

interface StepNode extends GraphNode {
  title: string;
}

/** What went wrong in a graph run: every failed step, then what did not run because of them. */
function failureReport(nodes: readonly StepNode[], outcomes: ReadonlyMap<string, NodeOutcome>): BronzeError | undefined {
  const failed = nodes.filter((n) => outcomes.get(n.id)?.status === "failed");
  if (failed.length === 0) return undefined;
  const errorOf = (n: StepNode) => (outcomes.get(n.id) as { error: unknown }).error;
  if (failed.length === 1 && errorOf(failed[0]!) instanceof BronzeError) return errorOf(failed[0]!) as BronzeError;
  const blocked = nodes.filter((n) => outcomes.get(n.id)?.status === "blocked").map((n) => n.title);
  const lines = failed.map((n) => {
    const error = errorOf(n);
    return `--- ${n.title} ---\n${error instanceof Error ? error.message : String(error)}`;
  });
  const allInput = failed.every((n) => errorOf(n) instanceof InputError);
  return new BronzeError(
    `${failed.length} build steps failed: ${failed.map((n) => n.title).join(", ")}${blocked.length ? `; not run because of them: ${blocked.join(", ")}` : ""}\n${lines.join("\n")}`,
    allInput ? EXIT_USAGE : EXIT_FAILURE,
  );
}

const clock = () => new Date().toISOString().slice(11, 19);

/** One line per event, when it happens: what CI logs show (listr2 would print every step as started at once). */
function lineReporter(nodes: readonly StepNode[], cachedSteps: ReadonlySet<string>): GraphEvents {
  const title = (id: string) => nodes.find((n) => n.id === id)?.title ?? id;
  const began = new Map<string, number>();
  return {
    started: (id) => {
      began.set(id, Date.now());
      console.log(`❯ [${clock()}] ${title(id)}`);
    },
    settled: (id, outcome) => {
      const seconds = `${((Date.now() - (began.get(id) ?? Date.now())) / 1000).toFixed(1)} s`;
      if (outcome.status === "ok") console.log(`✔ [${clock()}] ${title(id)}${cachedSteps.has(id) ? " (cached)" : ""} ${seconds}`);
      else if (outcome.status === "failed") console.log(`✖ [${clock()}] ${title(id)} failed after ${seconds}`);
      else console.log(`↓ [${clock()}] ${title(id)} not run: needs ${outcome.by.map(title).join(", ")}, which failed`);
    },
  };
}

/** On a terminal, listr2 shows the steps of the graph with their state as they run. */
async function listrView(nodes: readonly StepNode[], running: ReadonlyMap<string, Promise<NodeOutcome>>, cachedSteps: ReadonlySet<string>): Promise<void> {
  const tasks = new Listr(
    nodes.map((n) => ({
      title: n.title,
      task: async (_: unknown, task: { title: string; skip: (message: string) => void }) => {
        const outcome = await running.get(n.id)!;
        if (outcome.status === "failed") throw outcome.error;
        if (outcome.status === "blocked") task.skip(`not run: needs ${outcome.by.join(", ")}, which failed`);
        else if (cachedSteps.has(n.id)) task.title += " (cached)";
      },
    })),
    { concurrent: true, exitOnError: false, renderer: "default", rendererOptions: { collapseSubtasks: false, collapseErrors: false } },
  );
  await tasks.run();
}

/**
 * Runs the build graph within the job budget: a step that fails does not stop the steps that do not
 * need it, and the build then reports every failure.
 */
async function runSteps(nodes: readonly StepNode[], budget: JobBudget, cachedSteps: ReadonlySet<string>, shared: boolean): Promise<void> {
  const simple = shared || useSimpleRenderer();
  const running = runGraph(nodes, budget, simple ? lineReporter(nodes, cachedSteps) : {});
  if (!simple) await listrView(nodes, running, cachedSteps);
  const outcomes = new Map<string, NodeOutcome>();
  for (const [id, outcome] of running) outcomes.set(id, await outcome);
  const failure = failureReport(nodes, outcomes);
  if (failure) throw failure;
}

export function must<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`internal: ${what} was not built`);
  return value;
}

export function useSimpleRenderer(): boolean {
  return !process.stdout.isTTY || Boolean(process.env.CI);
}

type NodeFactory = <K extends NodeId>(
  id: K,
  title: string,
  deps: readonly NodeId[],
  cacheable: boolean,
  work: (ctx: PipelineContext, input: NodeInput) => Promise<NodeArtifacts[K]>,
) => StepNode;

/** The extensions of the profile resolved (verified, checked against the base) and layered. */
async function layerExtensions(plan: BuildPlan, input: NodeInput, ctx: PipelineContext, connect: StepOptions["connect"]): Promise<NodeArtifacts["extensions"]> {
  const { profile } = plan;
  const kernel = input.of("kernel");
  const packages = new Map(plan.extensionPackages.map((name) => [name, input.of(packageNode(name))]));
  const resolved: ResolvedExtension[] = [];
  const notes: string[] = [];
  for (const ref of profile.extensions) {
    if (ref.kind === "build") resolved.push(await treeExtension(must(plan.treeExtensions.get(ref.dir), ref.dir), packages, kernel, archNamed(profile.arch), (line) => notes.push(line)));
    else if (ref.kind === "image") resolved.push(await imageExtension(ref, plan.trustedKeys, profile));
    else {
      if (!connect) throw new InputError(`extension ${ref.reference}: this build has no registry connection (bronze build makes one)`);
      const source = await pullExtension(ref, connect, ctx.cacheDir);
      resolved.push(await imageExtension({ source, digest: ref.digest, reference: ref.reference }, plan.trustedKeys, profile));
    }
  }
  if (notes.length) await writeFile(join(ctx.logDir, "extensions.log"), `${notes.join("\n")}\n`);
  await enforceExtensionPolicy(resolved, { osVersion: plan.version, baseFiles: new Set(await imagePaths(input.of("rootfs").rootfs.image)), kernel });
  const layers = await Promise.all(resolved.map((ext, i) => extensionLayer(ext, i, ctx)));
  const index = await modulesIndexLayer(kernel, resolved, ctx);
  return { extensions: resolved, layers: index ? [...layers, index] : layers };
}

/** The nodes of the step graph: each package, the kernel, rootfs, extensions, initramfs, hardening gate, UKI. */
function stepNodes(plan: BuildPlan, node: NodeFactory, options: StepOptions): StepNode[] {
  const { profile } = plan;
  const userland = plan.userland.map((d) => packageNode(d.name));
  const kernelTitle = `kernel ${plan.kernelSource.version} (profile ${profile.kernelProfile})`;
  const rootPackages = (input: NodeInput) => rootPackagesOf(plan, (name) => input.of(packageNode(name)));
  return [
    // the kernel first: the longest step, it takes a slot before the packages fill them
    node("kernel", kernelTitle, [], true, (ctx) => {
      const spec = {
        arch: profile.arch,
        profile: profile.kernelProfile,
        extraConfig: profile.kernelExtraConfig,
        modules: plan.kernelModules,
        extensionModules: plan.extensionModules,
        signingKey: options.moduleSigningKey,
      };
      return buildKernel(plan.kernelSource, spec, ctx, kernelConfigGate(plan.hardening));
    }),
    ...plan.userland.map((def) =>
      node(packageNode(def.name), `package ${def.name} ${def.version}`, def.dependencies.map(packageNode), true, (ctx, input) =>
        buildPackage(def, new Map(def.dependencies.map((name) => [name, input.of(packageNode(name))])), archNamed(profile.arch), ctx),
      ),
    ),
    node("rootfs", "rootfs.sqsh", [...userland, "kernel"], true, async (ctx, input) => {
      const inRoot = rootPackages(input);
      const kernel = input.of("kernel");
      const modules = plan.kernelModules.map((def) => ({ def, sourceDigests: kernel.moduleSources[def.name] ?? [] }));
      const linked = await linkedPackages(plan, (name) => input.of(packageNode(name)));
      const sbom = imageSbom({ profile: profile.baseImage, version: plan.version, arch: profile.arch, epoch: ctx.epoch, packages: inRoot, linked, kernelSource: plan.kernelSource, kernel, kernelModules: modules, projectRoot: ctx.projectRoot });
      return { sbom, rootfs: await buildRootfs(inRoot.map((p) => p.artifact), kernel, plan.release, ctx, sbom) };
    }),
    ...(profile.extensions.length
      ? [
          node("extensions", `extensions (${profile.extensions.length}): verify, check, layer`, ["rootfs", "kernel", ...plan.extensionPackages.map(packageNode)], true, (ctx, input) =>
            layerExtensions(plan, input, ctx, options.connect),
          ),
        ]
      : []),
    node("initramfs", "initramfs", ["rootfs", packageNode("init"), ...(profile.extensions.length ? (["extensions"] as const) : [])], true, async (ctx, input) => {
      const base = await buildInitramfs(initBinaryOf(input.of(packageNode("init"))), input.of("rootfs").rootfs, ctx);
      const layers = profile.extensions.length ? input.of("extensions").layers : [];
      return layers.length ? appendLayers(base, layers, ctx) : base;
    }),
    // not a cached step: it runs on every build, in milliseconds
    node("hardening", "hardening gate (kernel config, command line, sysctls)", [...userland, "kernel"], false, async (_ctx, input) =>
      imageGate(plan.hardening, {
        dotConfig: await readFile(input.of("kernel").config, "utf8"),
        cmdline: profile.cmdline,
        sysctl: await imageSysctlText(rootPackages(input).map((p) => p.artifact.dir)),
      }),
    ),
    node("uki", "UKI", ["kernel", "initramfs", "hardening"], true, (ctx, input) =>
      buildUki({ stubPath: plan.efi.stub, kernel: input.of("kernel"), initramfs: input.of("initramfs"), osRelease: plan.release, cmdline: profile.cmdline, pcrSigner: options.pcrSigner }, ctx),
    ),
  ];
}

/** The init binary in the built init package: /init of the initramfs. */
function initBinaryOf(init: PackageArtifact): string {
  return join(init.dir, INIT_IN_PACKAGE);
}

/**
 * The dependencies of the rootfs's packages that are built into their programs: those not in the rootfs
 * themselves whose output has a static library (headers-only ones, like linux-headers, are not), each
 * with the rootfs packages that need it, directly or not.
 */
async function linkedPackages(plan: BuildPlan, packageOf: (name: string) => PackageArtifact): Promise<{ def: PackageDef; artifact: PackageArtifact; into: string[] }[]> {
  const byName = new Map(plan.userland.map((d) => [d.name, d]));
  const inRoot = new Set(plan.profile.packages);
  const needs = (name: string, seen = new Set<string>()): Set<string> => {
    for (const dep of byName.get(name)?.dependencies ?? []) if (!seen.has(dep)) needs(dep, seen.add(dep));
    return seen;
  };
  const linked = [];
  for (const def of plan.userland.filter((d) => !inRoot.has(d.name))) {
    const into = plan.profile.packages.filter((root) => needs(root).has(def.name));
    const artifact = packageOf(def.name);
    if (into.length && (await hasStaticLibrary(artifact.dir))) linked.push({ def, artifact, into });
  }
  return linked;
}

const hasStaticLibrary = async (dir: string): Promise<boolean> =>
  (await readdir(join(dir, "usr", "lib")).catch(() => [] as string[])).some((f) => f.endsWith(".a"));

function rootPackagesOf(plan: BuildPlan, packageOf: (name: string) => PackageArtifact): StepResults["rootPackages"] {
  return plan.userland.filter((d) => plan.profile.packages.includes(d.name)).map((def) => ({ def, artifact: packageOf(def.name) }));
}

/**
 * Runs the step graph within the job budget. Each node's work gets a context of its own, whose `ran` tells
 * which of its cached steps ran: a node is shown as cached when it has cached steps (`cacheable`) and none ran.
 */
export async function runStepGraph(plan: BuildPlan, ctx: PipelineContext, options: StepOptions, started: number): Promise<StepResults> {
  // what builds that were killed outright left behind: their keys first, then their trees
  await removeLeftoverKeys();
  await removeOrphans(join(ctx.workDir, "kernel"));
  await ctx.compileCache.removeAbandoned();
  const artifacts = new Map<NodeId, unknown>();
  const timeline: ReportInput["timeline"] = [];
  const cachedSteps = new Set<string>();
  const made = <D extends NodeId>(id: D): NodeArtifacts[D] => {
    if (!artifacts.has(id)) throw new Error(`internal: ${id} was not built`);
    return artifacts.get(id) as NodeArtifacts[D];
  };
  // another architecture's steps say so: a build of several runs theirs side by side
  const arch = plan.profile.arch === DEFAULT_ARCH.name ? "" : `${plan.profile.arch}: `;
  const node: NodeFactory = (id, step, deps, cacheable, work) => {
    const title = `${arch}${step}`;
    const run = async () => {
      const start = Date.now();
      const own: PipelineContext = { ...ctx, ran: [], served: [] };
      // a node reads only what it declared: a missing edge is an error here, not a race
      const input: NodeInput = {
        of: (dep) => {
          if (!deps.includes(dep)) throw new Error(`internal: step ${id} reads ${dep}, which it does not depend on`);
          return made(dep);
        },
      };
      try {
        artifacts.set(id, await work(own, input));
      } finally {
        ctx.ran.push(...own.ran);
        ctx.served.push(...own.served);
      }
      const cached = cacheable && own.ran.length === 0;
      const builtMs = own.served.reduce((sum, s) => sum + s.builtMs, 0);
      timeline.push({ step: title, startMs: start - started, durationMs: Date.now() - start, cached, ...(cached ? { builtMs } : {}) });
      if (cached) cachedSteps.add(id);
    };
    return { id, title, deps, run };
  };
  const budget = options.sharedBudget ?? new JobBudget(options.jobs ?? ctx.jobs);
  await runSteps(stepNodes(plan, node, options), budget, cachedSteps, options.sharedBudget !== undefined);
  const rootfs = made("rootfs");
  const extensions = plan.profile.extensions.length ? made("extensions") : undefined;
  return {
    packages: new Map(plan.userland.map((d) => [d.name, made(packageNode(d.name))])),
    rootPackages: rootPackagesOf(plan, (name) => made(packageNode(name))),
    initBinary: initBinaryOf(made(packageNode("init"))),
    kernel: made("kernel"),
    rootfs: rootfs.rootfs,
    sbom: rootfs.sbom,
    initramfs: made("initramfs"),
    uki: made("uki"),
    hardening: made("hardening"),
    ...(extensions ? { extensions: extensions.extensions } : {}),
    layers: extensions?.layers ?? [],
    timeline: [...timeline].sort((a, b) => a.startMs - b.startMs),
  };
}
