package disk

import (
	"encoding/binary"
	"encoding/hex"
	"os"

	"github.com/cairn-os/cairn/boot"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/diskfs/go-diskfs/partition/mbr"
)

// rootTypes are the GPT partition types of a root partition (the
// Discoverable Partitions Specification's), by architecture.
var rootTypes = map[string]gpt.Type{
	"arm64": gpt.Type("B921B045-1DF0-41C3-AF44-4C6F280D3FAE"),
	"amd64": gpt.Type("4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"),
}

// writeTable writes the family's partition table: GPT with an ESP and
// root partitions, or MBR with FAT partitions and the disk id at 440.
func (in *Input) writeTable(f *os.File, layout []part, total int64, id string) error {
	if in.Board.Family.Table() == "gpt" {
		t := &gpt.Table{LogicalSectorSize: sectorSize, PhysicalSectorSize: sectorSize, ProtectiveMBR: true, GUID: id}
		for _, p := range layout {
			typ := rootTypes[in.Board.Arch]
			if p.num == boot.PartBoot {
				typ = gpt.EFISystemPartition
			}
			t.Partitions = append(t.Partitions, &gpt.Partition{
				Index: p.num, Start: uint64(p.start / sectorSize), End: uint64(p.end()/sectorSize - 1), Size: uint64(p.size),
				Type: typ, Name: p.name, GUID: in.guid(p.name),
			})
		}
		return t.Write(f, total)
	}
	t := &mbr.Table{LogicalSectorSize: sectorSize, PhysicalSectorSize: sectorSize}
	for _, p := range layout {
		t.Partitions = append(t.Partitions, &mbr.Partition{
			Index: p.num, Bootable: p.num == boot.PartBoot, Type: mbr.Fat32LBA,
			Start: uint32(p.start / sectorSize), Size: uint32(p.size / sectorSize),
		})
	}
	if err := t.Write(f, total); err != nil {
		return err
	}
	raw, _ := hex.DecodeString(id)
	var le [4]byte
	binary.LittleEndian.PutUint32(le[:], binary.BigEndian.Uint32(raw))
	_, err := f.WriteAt(le[:], 440)
	return err
}
