import { mkdtemp, open, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeAtomic } from "../core/atomic.ts";
import { InputError } from "../core/errors.ts";
import { run } from "../core/exec.ts";
import { guidBytes } from "../core/guid.ts";
import type { DiskFormat } from "../core/outputs.ts";
import { gzip } from "../oci/image.ts";
import { writeTar } from "../oci/tar.ts";

/**
 * A raw disk written in the other formats: compressed (zstd, xz), qcow2 (QEMU, OpenStack, nocloud),
 * a fixed VHD (Azure; our own footer writer, as qemu-img stamps the time) and GCP's `disk.raw` in a
 * GNU tar, gzipped. Each is the same bytes for the same raw disk and epoch.
 */

const MiB = 1 << 20;
/** VHD time stamps count from 2000-01-01T00:00:00Z. */
const VHD_EPOCH = 946_684_800;
const VHD_FOOTER = 512;

/** The CHS geometry a VHD footer records, by the algorithm of Microsoft's VHD specification. */
export function vhdGeometry(sizeBytes: number): { cylinders: number; heads: number; sectors: number } {
  const total = Math.min(Math.floor(sizeBytes / 512), 65535 * 16 * 255);
  let sectors: number;
  let heads: number;
  let cylinderTimesHeads: number;
  if (total >= 65535 * 16 * 63) {
    sectors = 255;
    heads = 16;
    cylinderTimesHeads = Math.floor(total / sectors);
  } else {
    sectors = 17;
    cylinderTimesHeads = Math.floor(total / sectors);
    heads = Math.max(4, Math.floor((cylinderTimesHeads + 1023) / 1024));
    if (cylinderTimesHeads >= heads * 1024 || heads > 16) {
      sectors = 31;
      heads = 16;
      cylinderTimesHeads = Math.floor(total / sectors);
    }
    if (cylinderTimesHeads >= heads * 1024) {
      sectors = 63;
      heads = 16;
      cylinderTimesHeads = Math.floor(total / sectors);
    }
  }
  return { cylinders: Math.floor(cylinderTimesHeads / heads), heads, sectors };
}

/** The footer that makes a raw disk of `sizeBytes` a fixed VHD: pure. */
export function vhdFooter(sizeBytes: number, epoch: number, uniqueId: string): Buffer {
  const f = Buffer.alloc(VHD_FOOTER);
  f.write("conectix", 0, "latin1");
  f.writeUInt32BE(2, 8); // features: reserved bit, always set
  f.writeUInt32BE(0x00010000, 12); // format version 1.0
  f.writeBigUInt64BE(0xffffffffffffffffn, 16); // data offset: none, a fixed disk
  f.writeUInt32BE(Math.max(0, epoch - VHD_EPOCH), 24);
  f.write("brnz", 28, "latin1"); // creator application
  f.writeUInt32BE(0x00010000, 32);
  f.write("Wi2k", 36, "latin1"); // creator host OS, as Hyper-V and qemu-img write it
  f.writeBigUInt64BE(BigInt(sizeBytes), 40); // original size
  f.writeBigUInt64BE(BigInt(sizeBytes), 48); // current size
  // a size the geometry cannot express exactly gets the largest geometry, which tells readers (qemu, as
  // qemu-img's force_size writes it) to take the current size: never a disk cut short of its backup GPT
  const chs = vhdGeometry(sizeBytes);
  const exact = chs.cylinders * chs.heads * chs.sectors * 512 === sizeBytes;
  const { cylinders, heads, sectors } = exact ? chs : { cylinders: 65535, heads: 16, sectors: 255 };
  f.writeUInt16BE(cylinders, 56);
  f.writeUInt8(heads, 58);
  f.writeUInt8(sectors, 59);
  f.writeUInt32BE(2, 60); // disk type: fixed
  guidBytes(uniqueId).copy(f, 68);
  let sum = 0;
  for (const byte of f) sum += byte;
  f.writeUInt32BE(~sum >>> 0, 64);
  return f;
}

export interface ConvertInput {
  /** the raw disk (sparse) */
  raw: string;
  sizeBytes: number;
  epoch: number;
  /** a GUID derived from the profile: the VHD's unique ID */
  diskGuid: string;
}

/** Copies a sparse file keeping its holes (a raw disk is mostly holes). */
const sparseCopy = (from: string, to: string) => run("cp", ["--sparse=always", from, to]);

const WRITERS: Record<Exclude<DiskFormat, "raw">, (input: ConvertInput, out: string) => Promise<unknown>> = {
  // multi-threaded modes whose output does not depend on the number of threads
  "raw.zst": ({ raw }, out) => run("zstd", ["-19", "-T0", "-q", "-f", raw, "-o", out]),
  "raw.xz": ({ raw }, out) => run("xz", ["-6", "-T2", "-k", "-f", "-c", raw], { stdoutFile: out }),
  qcow2: ({ raw }, out) => run("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", raw, out]),
  vhd: async ({ raw, sizeBytes, epoch, diskGuid }, out) => {
    if (sizeBytes % MiB !== 0) throw new InputError(`a VHD (Azure) disk is a whole number of MiB; ${sizeBytes} bytes is not: give --size in MiB`);
    await sparseCopy(raw, out);
    const handle = await open(out, "r+");
    try {
      await handle.write(vhdFooter(sizeBytes, epoch, diskGuid), 0, VHD_FOOTER, sizeBytes);
    } finally {
      await handle.close();
    }
  },
  // VMware: the OVF descriptor first, then the stream-optimized disk, in a ustar archive
  ova: async ({ raw, sizeBytes, epoch, diskGuid }, out) => {
    const work = await mkdtemp(join(tmpdir(), "bronze-ova-"));
    try {
      // the descriptor inside the VMDK names its file: it is made under the name it has in the OVA
      const vmdk = await streamOptimizedVmdk(raw, join(work, OVA_DISK), diskGuid);
      const ovf = ovfDescriptor({ name: "bronze", diskFile: OVA_DISK, diskFileSize: vmdk.length, capacityBytes: sizeBytes });
      const entries = [
        { path: OVA_DESCRIPTOR, type: "file" as const, mode: 0o644, data: Buffer.from(ovf) },
        { path: OVA_DISK, type: "file" as const, mode: 0o644, data: vmdk },
      ];
      await writeFile(out, writeTar(entries, epoch));
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  },
  // Compute Engine imports disk.raw from a GNU-format tar (sparse), gzipped
  gcp: async ({ raw, epoch }, out) => {
    const work = await mkdtemp(join(tmpdir(), "bronze-gcp-"));
    try {
      await sparseCopy(raw, join(work, "disk.raw"));
      await utimes(join(work, "disk.raw"), epoch, epoch);
      const tar = join(work, "disk.tar");
      await run("tar", ["--format=oldgnu", "--sparse", "--mtime", `@${epoch}`, "--owner=0", "--group=0", "--numeric-owner", "-C", work, "-cf", tar, "disk.raw"]);
      await writeFile(out, gzip(await readFile(tar)));
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  },
};

/** The VMDK's name inside the OVA; it sorts after the descriptor, which VMware reads first. */
const OVA_DISK = "disk1.vmdk";
const OVA_DESCRIPTOR = "bronze.ovf";

/** The OVF descriptor of a VM of the disk: UEFI firmware (the image boots no other way), LSI Logic SCSI, one NIC. Pure. */
export function ovfDescriptor(input: { name: string; diskFile: string; diskFileSize: number; capacityBytes: number }): string {
  const { name, diskFile, diskFileSize, capacityBytes } = input;
  const item = (fields: Record<string, string | number>) =>
    `      <Item>\n${Object.entries(fields).map(([k, v]) => `        <rasd:${k}>${v}</rasd:${k}>`).join("\n")}\n      </Item>`;
  return `<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf">
  <References>
    <File ovf:href="${diskFile}" ovf:id="file1" ovf:size="${diskFileSize}"/>
  </References>
  <DiskSection>
    <Info>Virtual disks</Info>
    <Disk ovf:capacity="${capacityBytes}" ovf:capacityAllocationUnits="byte" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection>
    <Info>Logical networks</Info>
    <Network ovf:name="VM Network">
      <Description>The VM Network network</Description>
    </Network>
  </NetworkSection>
  <VirtualSystem ovf:id="${name}">
    <Info>A bronze virtual machine</Info>
    <Name>${name}</Name>
    <OperatingSystemSection ovf:id="101" vmw:osType="other5xLinux64Guest">
      <Info>The guest operating system</Info>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>${name}</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>vmx-13</vssd:VirtualSystemType>
      </System>
${[
  item({ AllocationUnits: "hertz * 10^6", Description: "Number of virtual CPUs", ElementName: "2 virtual CPUs", InstanceID: 1, ResourceType: 3, VirtualQuantity: 2 }),
  item({ AllocationUnits: "byte * 2^20", Description: "Memory size", ElementName: "2048 MB of memory", InstanceID: 2, ResourceType: 4, VirtualQuantity: 2048 }),
  item({ Address: 0, Description: "SCSI controller", ElementName: "SCSI controller 0", InstanceID: 3, ResourceSubType: "lsilogic", ResourceType: 6 }),
  item({ AddressOnParent: 0, ElementName: "Hard disk 0", HostResource: "ovf:/disk/vmdisk1", InstanceID: 4, Parent: 3, ResourceType: 17 }),
  item({ AddressOnParent: 0, AutomaticAllocation: "true", Connection: "VM Network", ElementName: "Network adapter 0", InstanceID: 5, ResourceSubType: "VmxNet3", ResourceType: 10 }),
].join("\n")}
      <vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="efi"/>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
`;
}

/** The descriptor's CID line as qemu-img prints it: hex without leading zeros. */
const CID_LINE = /\nCID=[0-9a-f]{1,8}\n/;

/**
 * A VMDK with the random CID of its embedded descriptor replaced by eight hex digits of `seed`, and the rest
 * of the descriptor's area (the header's offset and size, in sectors) zeros. qemu-img prints its CID without
 * leading zeros, and may write the descriptor again with another CID, leaving the old text's tail beyond
 * the new one's end: so the area is written whole, the text first; every offset stays. Pure.
 */
export function withDerivedCid(vmdk: Buffer, seed: string): Buffer {
  if (vmdk.length < 512 || vmdk.toString("latin1", 0, 4) !== "KDMV") throw new Error("qemu-img wrote no VMDK (no KDMV header)");
  const areaStart = Number(vmdk.readBigUInt64LE(28)) * 512;
  const areaEnd = areaStart + Number(vmdk.readBigUInt64LE(36)) * 512;
  if (areaStart < 512 || areaEnd <= areaStart || areaEnd > vmdk.length) throw new Error("qemu-img wrote a VMDK whose header places no descriptor inside it");
  const area = vmdk.subarray(areaStart, areaEnd);
  const nul = area.indexOf(0);
  const text = area.toString("latin1", 0, nul < 0 ? area.length : nul);
  if (!CID_LINE.test(text)) throw new Error("qemu-img wrote a VMDK without the descriptor bronze expects (no CID line)");
  const hex = seed.replace(/[^0-9a-f]/g, "");
  // a leading zero would read back as a shorter CID
  const cid = (hex.startsWith("0") ? `1${hex}` : hex).slice(0, 8);
  const derived = Buffer.from(text.replace(CID_LINE, `\nCID=${cid}\n`), "latin1");
  if (derived.length >= area.length) throw new Error("qemu-img wrote a VMDK descriptor that fills its area: no room for the CID");
  const rewritten = Buffer.alloc(area.length);
  derived.copy(rewritten);
  return Buffer.concat([vmdk.subarray(0, areaStart), rewritten, vmdk.subarray(areaEnd)]);
}

/** qemu-img's stream-optimized VMDK, its CID derived from the disk: the same disk, the same bytes. */
async function streamOptimizedVmdk(raw: string, out: string, diskGuid: string): Promise<Buffer> {
  await run("qemu-img", ["convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized,adapter_type=lsilogic", raw, out]);
  return withDerivedCid(await readFile(out), diskGuid);
}

/** Writes the raw disk in `format` to `out` (atomically). */
export async function convertDisk(input: ConvertInput, format: Exclude<DiskFormat, "raw">, out: string): Promise<void> {
  await makeAtomic(out, (tmp) => WRITERS[format](input, tmp));
}
