import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Listr } from "listr2";
import type { PipelineContext } from "./context.ts";
import { archNamed } from "../core/arch.ts";
import { BronzeError, EXIT_FAILURE, EXIT_USAGE, InputError } from "../core/errors.ts";
import { removeAbandoned } from "../core/ownership.ts";
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
import { buildUki, type UkiArtifact } from "../uki/build.ts";
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
}

interface Stages {
  packages: Map<string, PackageArtifact>;
  kernel?: KernelArtifact;
  rootfs?: RootfsArtifact;
  sbom?: RootfsSbom;
  initramfs?: InitramfsArtifact;
  uki?: UkiArtifact;
  hardening?: HardeningReport;
  extensions?: ResolvedExtension[];
  layers?: LayerArtifact[];
}

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
async function runSteps(nodes: readonly StepNode[], budget: JobBudget, cachedSteps: ReadonlySet<string>): Promise<void> {
  const simple = useSimpleRenderer();
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

type NodeFactory = (id: string, title: string, deps: readonly string[], cacheable: boolean, work: (ctx: PipelineContext) => Promise<void>) => StepNode;

/** The extensions of the profile resolved (verified, checked against the base) and layered. */
async function layerExtensions(plan: BuildPlan, stages: Stages, ctx: PipelineContext, connect: StepOptions["connect"]): Promise<void> {
  const { profile } = plan;
  const kernel = must(stages.kernel, "kernel");
  const resolved: ResolvedExtension[] = [];
  for (const ref of profile.extensions) {
    if (ref.kind === "build") resolved.push(await treeExtension(must(plan.treeExtensions.get(ref.dir), ref.dir), stages.packages, kernel));
    else if (ref.kind === "image") resolved.push(await imageExtension(ref, plan.trustedKeys, profile.allowUnsigned));
    else {
      if (!connect) throw new InputError(`extension ${ref.reference}: this build has no registry connection (bronze build makes one)`);
      const source = await pullExtension(ref, connect, ctx.cacheDir);
      resolved.push(await imageExtension({ source, digest: ref.digest, reference: ref.reference }, plan.trustedKeys, profile.allowUnsigned));
    }
  }
  await enforceExtensionPolicy(resolved, { osVersion: plan.version, baseFiles: new Set(await imagePaths(must(stages.rootfs, "rootfs").image)), kernel });
  const layers = await Promise.all(resolved.map((ext, i) => extensionLayer(ext, i, ctx)));
  const index = await modulesIndexLayer(kernel, resolved, ctx);
  stages.extensions = resolved;
  stages.layers = index ? [...layers, index] : layers;
}

/** The nodes of the step graph: each package, the kernel, rootfs, extensions, initramfs, hardening gate, UKI. */
function stepNodes(plan: BuildPlan, stages: Stages, node: NodeFactory, options: StepOptions): StepNode[] {
  const { profile } = plan;
  const packageNode = (name: string) => `package ${name}`;
  const userland = plan.userland.map((d) => packageNode(d.name));
  const kernelTitle = `kernel ${plan.kernelSource.version} (profile ${profile.kernelProfile})`;
  return [
    ...plan.userland.map((def) =>
      node(packageNode(def.name), `package ${def.name} ${def.version}`, def.dependencies.map(packageNode), true, async (ctx) => {
        stages.packages.set(def.name, await buildPackage(def, stages.packages, ctx));
      }),
    ),
    node("kernel", kernelTitle, [], true, async (ctx) => {
      const spec = {
        arch: profile.arch,
        profile: profile.kernelProfile,
        extraConfig: profile.kernelExtraConfig,
        modules: plan.kernelModules,
        extensionModules: plan.extensionModules,
        signingKey: options.moduleSigningKey,
      };
      stages.kernel = await buildKernel(plan.kernelSource, spec, ctx, kernelConfigGate(plan.hardening));
    }),
    node("rootfs", "rootfs.sqsh", [...userland, "kernel"], true, async (ctx) => {
      const inRoot = rootPackagesOf(plan, stages);
      const kernel = must(stages.kernel, "kernel");
      const modules = plan.kernelModules.map((def) => ({ def, sourceDigests: kernel.moduleSources[def.name] ?? [] }));
      stages.sbom = imageSbom({ profile: profile.baseImage, version: plan.version, arch: profile.arch, epoch: ctx.epoch, packages: inRoot, kernelSource: plan.kernelSource, kernel, kernelModules: modules, projectRoot: ctx.projectRoot });
      stages.rootfs = await buildRootfs(inRoot.map((p) => p.artifact), kernel, plan.release, ctx, stages.sbom);
    }),
    ...(profile.extensions.length
      ? [
          node("extensions", `extensions (${profile.extensions.length}): verify, check, layer`, ["rootfs", "kernel", ...plan.extensionPackages.map(packageNode)], true, async (ctx) => {
            await layerExtensions(plan, stages, ctx, options.connect);
          }),
        ]
      : []),
    node("initramfs", "initramfs", ["rootfs", packageNode("init"), ...(profile.extensions.length ? ["extensions"] : [])], true, async (ctx) => {
      const base = await buildInitramfs(initBinaryOf(stages), must(stages.rootfs, "rootfs"), ctx);
      stages.initramfs = stages.layers?.length ? await appendLayers(base, stages.layers, ctx) : base;
    }),
    // not a cached step: it runs on every build, in milliseconds
    node("hardening", "hardening gate (kernel config, command line, sysctls)", [...userland, "kernel"], false, async () => {
      stages.hardening = imageGate(plan.hardening, {
        dotConfig: await readFile(must(stages.kernel, "kernel").config, "utf8"),
        cmdline: profile.cmdline,
        sysctl: await imageSysctlText(rootPackagesOf(plan, stages).map((p) => p.artifact.dir)),
      });
    }),
    node("uki", "UKI", ["kernel", "initramfs", "hardening"], true, async (ctx) => {
      const kernel = must(stages.kernel, "kernel");
      const initramfs = must(stages.initramfs, "initramfs");
      stages.uki = await buildUki({ stubPath: archNamed(profile.arch).stub, kernel, initramfs, osRelease: plan.release, cmdline: profile.cmdline }, ctx);
    }),
  ];
}

/** The init binary in the built init package: /init of the initramfs. */
function initBinaryOf(stages: Stages): string {
  return join(must(stages.packages.get("init"), "package init").dir, INIT_IN_PACKAGE);
}

function rootPackagesOf(plan: BuildPlan, stages: Stages): StepResults["rootPackages"] {
  return plan.userland.filter((d) => plan.profile.packages.includes(d.name)).map((def) => ({ def, artifact: must(stages.packages.get(def.name), `package ${def.name}`) }));
}

/**
 * Runs the step graph within the job budget. Each node's work gets a context of its own, whose `ran` tells
 * which of its cached steps ran: a node is shown as cached when it has cached steps (`cacheable`) and none ran.
 */
export async function runStepGraph(plan: BuildPlan, ctx: PipelineContext, options: StepOptions, started: number): Promise<StepResults> {
  const stages: Stages = { packages: new Map() };
  // what builds that were killed outright left behind: their keys first, then their trees
  await removeLeftoverKeys();
  await removeAbandoned(join(ctx.workDir, "kernel"));
  await ctx.compileCache.removeAbandoned();
  const timeline: ReportInput["timeline"] = [];
  const cachedSteps = new Set<string>();
  const node: NodeFactory = (id, title, deps, cacheable, work) => ({
    id,
    title,
    deps,
    run: async () => {
      const start = Date.now();
      const own: PipelineContext = { ...ctx, ran: [], served: [] };
      try {
        await work(own);
      } finally {
        ctx.ran.push(...own.ran);
        ctx.served.push(...own.served);
      }
      const cached = cacheable && own.ran.length === 0;
      const builtMs = own.served.reduce((sum, s) => sum + s.builtMs, 0);
      timeline.push({ step: title, startMs: start - started, durationMs: Date.now() - start, cached, ...(cached ? { builtMs } : {}) });
      if (cached) cachedSteps.add(id);
    },
  });
  await runSteps(stepNodes(plan, stages, node, options), new JobBudget(options.jobs ?? ctx.jobs), cachedSteps);
  return {
    packages: stages.packages,
    rootPackages: rootPackagesOf(plan, stages),
    initBinary: initBinaryOf(stages),
    kernel: must(stages.kernel, "kernel"),
    rootfs: must(stages.rootfs, "rootfs"),
    sbom: must(stages.sbom, "sbom"),
    initramfs: must(stages.initramfs, "initramfs"),
    uki: must(stages.uki, "uki"),
    hardening: must(stages.hardening, "hardening gate"),
    ...(stages.extensions ? { extensions: stages.extensions } : {}),
    layers: stages.layers ?? [],
    timeline: [...timeline].sort((a, b) => a.startMs - b.startMs),
  };
}
