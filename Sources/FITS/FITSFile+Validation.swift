// Header checks made before cfitsio sizes, allocates, loops or divides by a header value.
import CFITSIO
import CZlib
import Foundation

extension FITSFile {
    /// The largest decompressed image allowed, as a multiple of the file's size: a
    /// tile-compressed image may shrink a lot (PLIO and HCOMPRESS of flat images), but
    /// not by more than this. Images up to `decompressedAllowance` bytes always pass.
    static let maximumCompressionRatio = 1024
    /// Decompressed images of this many bytes (256 MiB) pass whatever the file's size.
    static let decompressedAllowance = 1 << 28

    /// Walks the headers of every HDU in the file's own bytes and checks their structural
    /// keywords against each other and against the file's size, before cfitsio moves to
    /// any HDU but the first: cfitsio divides by ZTILEn while it reads a compressed HDU's
    /// header (SIGFPE for 0, already in `fits_get_num_hdus`), and by BLOCKSIZE, allocates
    /// from NAXISn and PCOUNT and loops over rows when it reads the data.
    ///
    /// Throws `.invalidKeyword` naming the HDU, keyword, value and what was expected. Stops
    /// quietly where the file ends or stops being FITS: cfitsio reports those itself
    /// (`.truncated` comes from `checkComplete` when an HDU is used).
    func validateHeaders(_ pointer: UnsafeMutablePointer<fitsfile>) throws {
        guard let diskSize else { return }
        var offset = 0
        var index = 0
        var block = [UInt8](repeating: 0, count: 2880)
        while offset < diskSize {
            // One header: 2,880-byte blocks of 36 cards up to END.
            var cards: [String: String] = [:]
            var headerEnd: Int?
            var blockStart = offset
            scan: while blockStart + 2880 <= diskSize {
                var status: Int32 = 0
                ffmbyt(pointer, Int64(blockStart), 0, &status)
                block.withUnsafeMutableBytes { _ = ffgbyt(pointer, 2880, $0.baseAddress, &status) }
                if status != 0 { ffcmsg(); return }
                if blockStart == offset, index > 0 { try checkTableCards(block, hdu: index) }
                for card in 0..<36 {
                    let bytes = block[card * 80..<card * 80 + 80]
                    // Columns 1-8 as cfitsio reads them: "     END" is not END.
                    let keyword = Self.keyword(bytes)
                    if blockStart == offset, card == 0, keyword != (index == 0 ? "SIMPLE" : "XTENSION") { return }
                    if keyword == "END" { headerEnd = blockStart + 2880; break scan }
                    // The card as cfitsio looks keywords up and reads values (below): "ZIMAGE )="
                    // is ZIMAGE to it, and "ZTILE1  =0   7" has a value.
                    guard let (name, value) = Self.valueCard(bytes) else { continue }
                    if index > 0 { try Self.checkColumnName(name, value, path: path, hdu: index) }
                    if cards[name] != nil {
                        try Self.checkNotDuplicated(name, path: path, hdu: index)
                        continue
                    }
                    cards[name] = Self.valueText(value)
                }
                blockStart += 2880
            }
            guard let dataStart = headerEnd else { return }
            let keys = HeaderKeys(path: path, hdu: index) { cards[$0] }
            let dataBytes = try validate(keys, dataStart: dataStart, diskSize: diskSize)
            headerStarts.append(offset)
            guard dataBytes <= diskSize - dataStart else {
                let blocks = dataBytes / 2880 + (dataBytes % 2880 == 0 ? 0 : 1)
                dataEnds.append(blocks > (Int.max - dataStart) / 2880 ? Int.max : dataStart + blocks * 2880)
                return
            }
            offset = dataStart + (dataBytes + 2879) / 2880 * 2880
            dataEnds.append(offset)
            index += 1
        }
    }

    /// A card's keyword: columns 1-8 without trailing blanks (leading blanks kept, as in
    /// cfitsio, for which a card starting with a blank has no keyword).
    static func keyword(_ card: ArraySlice<UInt8>) -> String {
        var name = Array(card.prefix(8))
        while name.last == 0x20 { name.removeLast() }
        return String(decoding: name, as: UTF8.self)
    }

    /// A value card's keyword and value field as cfitsio 4.2 reads them (`ffgknm`, `ffpsvc`,
    /// checked against the installed library): the name runs to the first blank or "="
    /// ("ZIMAGE )=" and "ZIMAGE =" are ZIMAGE); the value starts after "=" in column 9 or,
    /// failing that, after the first "=" anywhere in the card ("ZTILE1 X = 5" is 5);
    /// COMMENT, HISTORY, CONTINUE and cards with a blank name have none. The value field
    /// runs to the comment, so "0   7" (cfitsio: 0, then a comment) is no integer here and a
    /// structural keyword written so is refused.
    static func valueCard(_ card: ArraySlice<UInt8>) -> (name: String, value: ArraySlice<UInt8>)? {
        let equals = UInt8(ascii: "="), blank = UInt8(ascii: " ")
        let nameEnd = card.firstIndex { $0 == blank || $0 == equals || $0 == 0 } ?? card.endIndex
        let name = String(decoding: card[card.startIndex..<nameEnd], as: UTF8.self)
        guard !name.isEmpty, !["COMMENT", "HISTORY", "CONTINUE"].contains(name) else { return nil }
        if card.dropFirst(8).first == equals { return (name, card.dropFirst(9)) }
        guard let at = card.firstIndex(of: equals) else { return nil }
        return (name, card[(at + 1)...])
    }

    /// The first 8 cards of a table header must be XTENSION, BITPIX, NAXIS, NAXIS1, NAXIS2,
    /// PCOUNT, GCOUNT, TFIELDS (the FITS standard's order), printable ASCII, each but the
    /// first with an unquoted integer. cfitsio 4.2's `ffgttb` reads them by position and,
    /// when one fails with anything but "out of order" or "not a positive integer" (an
    /// illegal character, a missing quote, a non-numeric value), goes on to TFIELDS,
    /// fails again and returns `*status == BAD_TFIELDS` (0) instead of setting it; `ffbinit`
    /// then passes its uninitialised field count to `calloc` (found by the fuzzers: a
    /// request of 2^54 bytes). Checked on the header's first block, before any END, when
    /// the XTENSION card names a table as written or as cfitsio reads it (its value after
    /// the first "=" anywhere: "XTENSION<bytes>= 'BINTABLE'" is a table to cfitsio).
    func checkTableCards(_ block: [UInt8], hdu: Int) throws {
        let first = block[0..<80]
        let asWritten = Self.valueText(first.dropFirst(10))
        let asRead = Self.valueCard(first).map { Self.valueText($0.value) }
        guard Self.keyword(first) == "XTENSION", Self.tableType(asWritten) != nil || Self.tableType(asRead) != nil else { return }
        let required = ["XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "PCOUNT", "GCOUNT", "TFIELDS"]
        for (position, name) in required.enumerated() {
            let card = block[position * 80..<position * 80 + 80]
            let printable = card.allSatisfy { (0x20...0x7E).contains($0) }
            let text = String(decoding: card.dropFirst(10), as: UTF8.self).trimmingCharacters(in: .whitespaces)
            let value = Self.valueText(card.dropFirst(10))
            let valueOK = position == 0 || (!text.hasPrefix("'") && Int(value) != nil)
            if printable, Self.keyword(card) == name, card.dropFirst(8).prefix(2).elementsEqual("= ".utf8), valueOK {
                continue
            }
            let found = printable
                ? "card \(position + 1) '\(String(decoding: card, as: UTF8.self).trimmingCharacters(in: .whitespaces))'"
                : "card \(position + 1) with bytes outside printable ASCII"
            throw FITSError.invalidKeyword(
                path: path, hdu: hdu, keyword: name, value: found,
                expected: (position == 0 ? "XTENSION= '<table type>'" : "\(name) = <integer>")
                    + " as card \(position + 1) of a table header (the FITS standard's order: "
                    + required.joined(separator: ", ") + ")")
        }
    }

    /// A structural keyword (those checked here and those cfitsio sizes, divides or loops
    /// by) may appear once: cfitsio looks a keyword up from the card after the one it read
    /// last, wrapping around, so with two cards it may use either, not the one checked
    /// here (a fuzz input with a second ZTILE1 = 'NOISEBIT' after ZCMPTYPE made cfitsio
    /// divide by zero in `imcomp_get_compressed_image_par`).
    static func checkNotDuplicated(_ keyword: String, path: String, hdu: Int) throws {
        let exact: Set = ["SIMPLE", "XTENSION", "BITPIX", "NAXIS", "PCOUNT", "GCOUNT", "GROUPS", "TFIELDS", "THEAP",
                          "ZIMAGE", "ZCMPTYPE", "ZBITPIX", "ZNAXIS", "ZPCOUNT", "ZGCOUNT", "ZQUANTIZ", "ZDITHER0",
                          "ZBLANK", "ZTENSION", "ZSIMPLE"]
        let prefixes = ["NAXIS", "TFORM", "TDIM", "ZNAXIS", "ZTILE", "ZNAME", "ZVAL"]
        let numbered = prefixes.contains { keyword.hasPrefix($0) && keyword.dropFirst($0.count).allSatisfy(\.isNumber) }
        guard exact.contains(keyword) || numbered else { return }
        throw FITSError.invalidKeyword(path: path, hdu: hdu, keyword: keyword, value: "(two cards)",
                                       expected: "one \(keyword) card: cfitsio may read either of two")
    }

    /// A table's TTYPEn written without quotes must be shorter than 70 bytes: cfitsio 4.2 reads
    /// an unquoted value as the token up to the first blank or "/" (`ffpsvc`), keeps it as the
    /// column name (`ffc2s` accepts it) and copies it with `strcpy` into its 70-byte `ttype`,
    /// so 70 bytes and the terminator overflow it (found by the fuzzers: glibc's fortify check
    /// aborts in `ffgtbp` when cfitsio moves to the HDU).
    static func checkColumnName(_ name: String, _ value: ArraySlice<UInt8>, path: String, hdu: Int) throws {
        guard name.hasPrefix("TTYPE") else { return }
        let blank = UInt8(ascii: " "), slash = UInt8(ascii: "/")
        let start = value.drop { $0 == blank }
        guard let first = start.first, first != UInt8(ascii: "'") else { return }
        let token = start.prefix { $0 != blank && $0 != slash }
        guard token.count >= 70 else { return }
        throw FITSError.invalidKeyword(path: path, hdu: hdu, keyword: name, value: "(\(token.count) bytes without quotes)",
                                       expected: "a quoted column name of at most 68 characters")
    }

    /// The kind of table an XTENSION value makes an HDU to cfitsio 4.2 (`ffrhdu`): leading
    /// blanks are ignored (`' BINTABLE'` is a binary table), "TABLE" is ASCII, and "BINTABLE",
    /// "A3DTABLE" and "3DTABLE" are binary, so each of those may hold a tile-compressed image.
    /// Compared without regard to case (cfitsio's comparison is exact), so that no spelling
    /// cfitsio takes for a table escapes the checks. nil: not a table.
    enum TableType { case ascii, binary }
    static func tableType(_ xtension: String?) -> TableType? {
        guard let xtension else { return nil }
        switch xtension.drop(while: { $0 == " " }).uppercased() {
        case "TABLE": return .ascii
        case "BINTABLE", "A3DTABLE", "3DTABLE": return .binary
        default: return nil
        }
    }

    /// A card's value as written: a string without its quotes (doubled quotes undone,
    /// trailing blanks dropped), anything else without its comment.
    static func valueText(_ bytes: ArraySlice<UInt8>) -> String {
        let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("'") { return FITSHeader.splitQuoted(text).text }
        let value = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return value.trimmingCharacters(in: .whitespaces)
    }

    /// Checks one HDU's keywords; returns the size of its data in bytes (without padding).
    private func validate(_ keys: HeaderKeys, dataStart: Int, diskSize: Int) throws -> Int {
        let index = keys.hdu
        let bitpix = try keys.integer("BITPIX", in: [8, 16, 32, 64, -32, -64], expected: "8, 16, 32, 64, -32 or -64")
        let axisCount = try keys.integer("NAXIS", range: 0...999)
        var axes: [Int] = []
        for axis in 0..<axisCount { axes.append(try keys.integer("NAXIS\(axis + 1)", range: 0...Int.max)) }
        let parameters = try keys.integer("PCOUNT", default: 0, range: 0...Int.max)
        let groups = try keys.integer("GCOUNT", default: 1, range: 0...Int.max)

        // Data size: |BITPIX|/8 x GCOUNT x (PCOUNT + NAXIS1 x ... x NAXISn), NAXIS1 left
        // out for random groups (NAXIS1 = 0, GROUPS = T).
        let randomGroups = index == 0 && axes.first == 0 && axes.count > 1 && keys.raw("GROUPS") == "T"
        guard let pixels = product(randomGroups ? Array(axes.dropFirst()) : axes),
              let elements = sum(axes.isEmpty ? 0 : pixels, parameters),
              let dataBytes = product([abs(bitpix) / 8, groups, elements]) else {
            throw keys.invalid(axes.isEmpty ? "PCOUNT" : "NAXIS1...NAXIS\(axes.count)",
                               axes.isEmpty ? "\(parameters)" : "\(axes)",
                               expected: "a data size that fits in the file (\(diskSize) bytes)")
        }
        if index > 0, let type = Self.tableType(keys.raw("XTENSION")) {
            try validateTable(keys, axes: axes, parameters: parameters, diskSize: diskSize)
            // cfitsio takes a logical value from its first character: "ZIMAGE  = TX EEND" is true.
            if keys.raw("ZIMAGE")?.hasPrefix("T") == true, type == .binary {
                try validateCompressedImage(keys, rows: axes[1], diskSize: diskSize)
            }
        }
        return dataBytes
    }

    /// Tables: TFIELDS, a row count a zero-width table cannot inflate, THEAP inside the
    /// data, and TFORMn repeat counts no wider than a row.
    private func validateTable(_ keys: HeaderKeys, axes: [Int], parameters: Int, diskSize: Int) throws {
        guard axes.count == 2 else {
            throw keys.invalid("NAXIS", "\(axes.count)", expected: "2 for a table")
        }
        let (rowBytes, rows) = (axes[0], axes[1])
        // The row data fit in the file (checked above) unless rows have no bytes.
        if rowBytes == 0, rows > diskSize {
            throw keys.invalid("NAXIS2", "\(rows)", expected: "at most \(diskSize) rows for rows of 0 bytes")
        }
        let fieldCount = try keys.integer("TFIELDS", range: 0...999)
        guard let tableBytes = product([rowBytes, rows]), tableBytes <= diskSize else { return }  // cfitsio: truncated
        if keys.raw("THEAP") != nil {
            _ = try keys.integer("THEAP", range: tableBytes...(tableBytes + parameters),
                                 expected: "between the table's size \(tableBytes) and that plus PCOUNT")
        }
        for field in 0..<fieldCount {
            let keyword = "TFORM\(field + 1)"
            guard let form = keys.raw(keyword) else { continue }
            let digits = form.prefix { $0.isNumber }
            // Bits (X) are the narrowest elements: at most 8 per byte of the row.
            if !digits.isEmpty, Int(digits).map({ $0 > 8 * rowBytes + 8 }) ?? true {
                throw keys.invalid(keyword, "'\(form)'", expected: "a repeat count that fits in a row of \(rowBytes) bytes")
            }
        }
    }

    /// Tile-compressed images: ZBITPIX, ZNAXISn, ZTILEn >= 1 whose tiles are the table's
    /// rows, a decompressed size bounded by the file's, and compression parameters
    /// (ZNAMEi/ZVALi) cfitsio can use (BLOCKSIZE > 0, BYTEPIX 1, 2, 4 or 8, ...).
    private func validateCompressedImage(_ keys: HeaderKeys, rows: Int, diskSize: Int) throws {
        let bitpix = try keys.integer("ZBITPIX", in: [8, 16, 32, 64, -32, -64],
                                      expected: "8, 16, 32, 64, -32 or -64")
        let axisCount = try keys.integer("ZNAXIS", range: 1...999)
        var axes: [Int] = []
        var tiles: [Int] = []
        for axis in 1...axisCount {
            let length = try keys.integer("ZNAXIS\(axis)", range: 0...Int.max)
            axes.append(length)
            // cfitsio's default tiles are whole rows.
            tiles.append(try keys.integer("ZTILE\(axis)", default: axis == 1 ? max(length, 1) : 1,
                                          range: 1...Int(Int32.max), expected: "a tile length of at least 1"))
        }
        guard let tilePixels = product(tiles), tilePixels <= Int(Int32.max) else {
            throw keys.invalid("ZTILE1...ZTILE\(axisCount)", "\(tiles)", expected: "tiles of at most 2^31 pixels")
        }
        let allowance = max(Self.decompressedAllowance, Self.maximumCompressionRatio * diskSize)
        guard let pixels = product(axes), let bytes = product([pixels, abs(bitpix) / 8]), bytes <= allowance else {
            throw keys.invalid("ZNAXIS1...ZNAXIS\(axisCount)", "\(axes)",
                               expected: "an image of at most \(allowance) bytes for a file of \(diskSize) bytes")
        }
        let tileCount = zip(axes, tiles).reduce(1) { count, pair in count * ((pair.0 + pair.1 - 1) / pair.1) }
        if tileCount != rows {
            throw keys.invalid("NAXIS2", "\(rows)",
                               expected: "one row per tile: \(tileCount) tiles of \(tiles) in an image of \(axes)")
        }
        // cfitsio reads ZVALn as numbers (ZVAL1 and ZVAL2 of a Rice image whatever the ZNAMEn
        // say, or when they are missing) and, for a long value that is not one, formats an
        // error message that overflows its buffer: glibc's fortify check aborts the process
        // (fuzz finding, `ZVAL2 = (   2`). Every ZVALn present must be a number.
        for number in 1...99 {
            guard let text = keys.raw("ZVAL\(number)") else { continue }
            guard Double(text.replacingOccurrences(of: "D", with: "E")) != nil else {
                throw keys.invalid("ZVAL\(number)", text, expected: "a number (a compression parameter)")
            }
        }
        for number in 1...999 {
            guard let name = keys.raw("ZNAME\(number)")?.uppercased() else { break }
            let keyword = "ZVAL\(number)"
            switch name {
            case "BLOCKSIZE": _ = try keys.integer(keyword, range: 1...65536, expected: "a BLOCKSIZE of 1...65536 (16 or 32)")
            case "BYTEPIX": _ = try keys.integer(keyword, in: [1, 2, 4, 8], expected: "a BYTEPIX of 1, 2, 4 or 8")
            case "SMOOTH": _ = try keys.integer(keyword, in: [0, 1], expected: "SMOOTH 0 or 1")
            case "SCALE", "NOISEBIT":
                let text = keys.raw(keyword) ?? ""
                guard let value = Double(text.replacingOccurrences(of: "D", with: "E")), value.isFinite, value >= 0 else {
                    throw keys.invalid(keyword, text, expected: "a finite \(name) >= 0")
                }
            default: break
            }
        }
        if ["RICE_1", "RICE_ONE"].contains(keys.raw("ZCMPTYPE")?.uppercased() ?? "") {
            let rice = Self.riceParameters(zval1: keys.raw("ZVAL1"), zval2: keys.raw("ZVAL2"))
            if !(1...65536).contains(rice.blockSize) {
                throw keys.invalid("ZVAL1", keys.raw("ZVAL1") ?? "(missing)",
                                   expected: "a Rice block size of 1...65536 (cfitsio takes ZVAL1 as the block size and "
                                       + "ZVAL2 as the bytes per pixel, whatever ZNAME1 and ZNAME2 say)")
            }
        }
    }

    /// The Rice block size and bytes per pixel as cfitsio 4.2 takes them: ZVAL1 and ZVAL2
    /// by position (not by ZNAMEn), 32 and 4 when absent or not numbers, swapped when the
    /// block size is below 16 and the bytes per pixel above 8 (an old writer's order).
    /// Checked against cfitsio: a header with ZNAME1 = 'BYTEPIX', ZVAL1 = 32, ZNAME2 =
    /// 'BLOCKSIZE', ZVAL2 = 2 reads correctly, and one without ZVAL2 is decoded with 4 bytes.
    static func riceParameters(zval1: String?, zval2: String?) -> (blockSize: Int, bytePix: Int) {
        func number(_ text: String?, _ fallback: Int) -> Int {
            guard let text else { return fallback }
            if let value = Int(text) { return value }
            guard let value = Double(text.replacingOccurrences(of: "D", with: "E")), value.isFinite,
                  abs(value) < 2_147_483_648 else { return fallback }
            return Int(value)
        }
        var blockSize = number(zval1, 32), bytePix = number(zval2, 4)
        if blockSize < 16, bytePix > 8 { swap(&blockSize, &bytePix) }
        return (blockSize, bytePix)
    }
}

extension FITSFile {
    /// Checks the tiles of a PLIO_1- or HCOMPRESS_1-compressed image before cfitsio
    /// decodes them: both decoders take sizes from the tile's own first words and trust
    /// them. PLIO's `pl_l2pi` reads as many words as the tile's header says (past the
    /// tile when it lies); HCOMPRESS's `fits_hdecompress` clears nx x ny pixels of a
    /// buffer of one tile. The caller holds the lock and has moved to the HDU.
    ///
    /// RICE_1: cfitsio's `fits_rdecomp`, `fits_rdecomp_short` and `fits_rdecomp_byte`
    /// check for the end of the tile only after each block of pixels, and within a block
    /// read on over zero bytes (a run of leading zeros) and over directly coded pixels, so
    /// damaged tile data made them read past the tile (SIGSEGV, found by the fuzzers).
    /// Each tile's bit stream is walked here as the decoder walks it, without decoding,
    /// and must end within the tile's bytes (`riceTileFits`).
    ///
    /// GZIP_1 and GZIP_2: cfitsio inflates a tile whole into a buffer it grows by
    /// `realloc`, however far the stream goes (up to about 1,000 x the tile's compressed
    /// size), and forever when the stream is cut short (a hang, found by the fuzzers).
    /// Each tile (COMPRESSED_DATA and GZIP_COMPRESSED_DATA) is inflated here through a
    /// 64 kB scratch buffer: it must end within its bytes and give at most 8 bytes per
    /// pixel of its tile (`gzipTileProblem`).
    ///
    /// Each HDU is checked once per `FITSFile` (the file is read-only).
    func validateTiles(_ pointer: UnsafeMutablePointer<fitsfile>, info: HDUInfo) throws {
        let hdu = info.index
        let compression = info.compression?.uppercased() ?? ""
        let plio = compression == "PLIO_1"
        let rice = compression == "RICE_1" || compression == "RICE_ONE"
        let gzip = compression == "GZIP_1" || compression == "GZIP_2"
        guard plio || rice || gzip || compression == "HCOMPRESS_1", !tilesChecked.contains(hdu) else { return }
        var status: Int32 = 0
        var column: Int32 = 0
        var rows: Int64 = 0
        var heap: Int64 = 0
        var name = Array("COMPRESSED_DATA".utf8CString)
        ffgcno(pointer, CASEINSEN, &name, &column, &status)
        ffgnrwll(pointer, &rows, &status)
        ffgkyjj(pointer, "PCOUNT", &heap, nil, &status)
        try check(status, "locate the compressed tiles", path: path, hdu: hdu)
        // ZTILEn (checked >= 1 at open), and the pixels of tile `row` (1-based): edge
        // tiles are cut by the image's edge, and cfitsio sizes their buffers so.
        let tiles = (1...max(info.shape.count, 1)).map { axis in
            max(readString(pointer, "ZTILE\(axis)").flatMap { Int($0) } ?? (axis == 1 ? info.shape[0] : 1), 1)
        }
        func tilePixelCount(_ row: Int64) -> Int {
            var rest = Int(row - 1), count = 1
            for (length, tile) in zip(info.shape, tiles) {
                let perAxis = (length + tile - 1) / tile
                let start = (rest % max(perAxis, 1)) * tile
                rest /= max(perAxis, 1)
                count *= max(min(tile, length - start), 0)
            }
            return count
        }
        // Rice: the parameters as cfitsio takes them (the block size was checked at open).
        let riceSettings = Self.riceParameters(zval1: readString(pointer, "ZVAL1"), zval2: readString(pointer, "ZVAL2"))
        // GZIP: lossless tiles of a quantised image may sit in GZIP_COMPRESSED_DATA.
        var gzipColumn: Int32 = 0
        if gzip {
            var gzipStatus: Int32 = 0
            var gzipName = Array("GZIP_COMPRESSED_DATA".utf8CString)
            ffgcno(pointer, CASEINSEN, &gzipName, &gzipColumn, &gzipStatus)
            if gzipStatus != 0 { ffcmsg(); gzipColumn = 0 }
        }
        func tileBytes(_ column: Int32, _ row: Int64, _ length: Int64) throws -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: Int(length))
            var null: UInt8 = 0
            var anyNull: Int32 = 0
            ffgcv(pointer, TBYTE, column, row, 1, length, &null, &bytes, &anyNull, &status)
            try check(status, "read tile \(row)", path: path, hdu: hdu)
            return bytes
        }
        func descriptor(_ column: Int32, _ row: Int64) throws -> Int64 {
            var length: Int64 = 0, offset: Int64 = 0
            ffgdesll(pointer, column, row, &length, &offset, &status)
            try check(status, "read tile \(row) descriptor", path: path, hdu: hdu)
            guard length >= 0, length <= heap else {
                throw FITSError.damagedData(path: path, hdu: hdu, what: "tile \(row) claims \(length) elements in a heap of \(heap) bytes")
            }
            return length
        }
        var words: [Int16] = []
        for row in 1...max(rows, 1) where rows > 0 {
            if gzip {
                let limit = tilePixelCount(row) * 8
                for tileColumn in [column, gzipColumn] where tileColumn > 0 {
                    let length = try descriptor(tileColumn, row)
                    if length == 0 { continue }
                    if let problem = Self.gzipTileProblem(try tileBytes(tileColumn, row, length), limit: limit) {
                        throw FITSError.damagedData(path: path, hdu: hdu, what: "GZIP tile \(row) \(problem)")
                    }
                }
                continue
            }
            let length = try descriptor(column, row)
            if length == 0 { continue }  // an uncompressed or null tile: cfitsio's own path
            if rice {
                let pixels = tilePixelCount(row)
                if !Self.riceTileFits(try tileBytes(column, row, length), pixels: pixels,
                                      blockSize: riceSettings.blockSize, bytePix: riceSettings.bytePix) {
                    throw FITSError.damagedData(
                        path: path, hdu: hdu,
                        what: "Rice tile \(row) (\(length) bytes, \(pixels) pixels, blocks of \(riceSettings.blockSize), "
                            + "\(riceSettings.bytePix == 1 || riceSettings.bytePix == 2 ? riceSettings.bytePix : 4) bytes per pixel) "
                            + "codes more bits than it has")
                }
                continue
            }
            if !plio {
                // Magic 0xDD99, then nx and ny as big-endian 32-bit integers.
                var head = [UInt8](repeating: 0, count: 10)
                var null: UInt8 = 0
                var anyNull: Int32 = 0
                guard length >= 10 else {
                    throw FITSError.damagedData(path: path, hdu: hdu, what: "HCOMPRESS tile \(row) has \(length) bytes")
                }
                ffgcv(pointer, TBYTE, column, row, 1, 10, &null, &head, &anyNull, &status)
                try check(status, "read tile \(row)", path: path, hdu: hdu)
                let nx = head[2..<6].reduce(0) { $0 << 8 | Int($1) }, ny = head[6..<10].reduce(0) { $0 << 8 | Int($1) }
                let (pixels, overflow) = nx.multipliedReportingOverflow(by: ny)
                let tilePixels = tilePixelCount(row)
                guard head[0] == 0xDD, head[1] == 0x99, nx > 0, ny > 0, !overflow, pixels <= tilePixels else {
                    throw FITSError.damagedData(path: path, hdu: hdu,
                                                what: "HCOMPRESS tile \(row) says \(nx) x \(ny) pixels; the tile has \(tilePixels)")
                }
                continue
            }
            words = [Int16](repeating: 0, count: Int(length))
            var null: Int16 = 0
            var anyNull: Int32 = 0
            ffgcv(pointer, TSHORT, column, row, 1, length, &null, &words, &anyNull, &status)
            try check(status, "read tile \(row)", path: path, hdu: hdu)
            // pl_l2pi's header: words[2] > 0 gives the length and data from word 4 on;
            // otherwise the length is words[4] << 15 + words[3] and data start at words[1] + 1.
            let count = words.count
            var valid = count >= 3
            if valid {
                let short = words[2] > 0
                valid = short || count >= 5
                if valid {
                    let listLength = short ? Int(words[2]) : (Int(words[4]) << 15) + Int(words[3])
                    let first = short ? 4 : Int(words[1]) + 1
                    // Opcode 1 (a high value) also reads the word after it.
                    let lastTakesTwo = listLength >= 1 && listLength <= count && words[listLength - 1] / 4096 == 1
                    valid = listLength <= 0 || (first >= 1 && listLength <= count - (lastTakesTwo ? 1 : 0))
                }
            }
            if !valid {
                throw FITSError.damagedData(path: path, hdu: hdu,
                                            what: "PLIO tile \(row) describes more words than its \(count)")
            }
        }
        tilesChecked.insert(hdu)
    }

    /// Whether cfitsio's Rice decoder stays within `bytes` decoding `pixels` pixels: the
    /// bit stream of `fits_rdecomp` (4 bytes per pixel; also any BYTEPIX but 1 and 2),
    /// `fits_rdecomp_short` (2) or `fits_rdecomp_byte` (1) is walked read for read, with
    /// the same unsigned 32-bit bit buffer, and false is returned at the first byte the
    /// decoder would read past the tile. Nothing is decoded.
    static func riceTileFits(_ bytes: [UInt8], pixels: Int, blockSize: Int, bytePix: Int) -> Bool {
        // FS field width, the FS value of directly coded blocks, bits per pixel.
        let (fsBits, fsMax, pixelBits) = bytePix == 1 ? (3, 6, 8) : bytePix == 2 ? (4, 14, 16) : (5, 25, 32)
        let count = bytes.count
        var position = bytePix == 1 || bytePix == 2 ? bytePix : 4  // the first pixel, stored whole
        guard position < count, blockSize >= 1 else { return false }
        var buffer = UInt32(bytes[position])
        position += 1
        var bits = 8  // bits of `buffer` not yet used
        var pixel = 0
        while pixel < pixels {
            bits -= fsBits
            while bits < 0 {
                guard position < count else { return false }
                buffer = buffer &<< 8 | UInt32(bytes[position]); position += 1
                bits += 8
            }
            let fs = Int(buffer >> UInt32(bits)) - 1
            buffer &= (1 << UInt32(bits)) &- 1
            let blockEnd = min(pixel + blockSize, pixels)
            if fs < 0 {
                pixel = blockEnd  // all differences zero: nothing read
            } else if fs == fsMax {
                // Each pixel's difference written out in pixelBits bits.
                while pixel < blockEnd {
                    var shift = pixelBits - bits - 8
                    while shift >= 0 {
                        guard position < count else { return false }
                        position += 1
                        shift -= 8
                    }
                    if bits > 0 {
                        guard position < count else { return false }
                        buffer = UInt32(bytes[position]) & ((1 << UInt32(bits)) - 1); position += 1
                    } else {
                        buffer = 0
                    }
                    pixel += 1
                }
            } else {
                // Rice codes: leading zeros, a one, then fs bits.
                while pixel < blockEnd {
                    while buffer == 0 {
                        guard position < count else { return false }
                        bits += 8
                        buffer = UInt32(bytes[position]); position += 1
                    }
                    let zeros = bits - (32 - buffer.leadingZeroBitCount)
                    bits -= zeros + 1
                    buffer ^= 1 << UInt32(bits)
                    bits -= fs
                    while bits < 0 {
                        guard position < count else { return false }
                        buffer = buffer &<< 8 | UInt32(bytes[position]); position += 1
                        bits += 8
                    }
                    buffer &= (1 << UInt32(bits)) &- 1
                    pixel += 1
                }
            }
        }
        return true
    }

    /// What is wrong with the gzip (or zlib) stream of a tile for cfitsio's
    /// `uncompress2mem_from_mem`, nil when nothing: it must end (Z_STREAM_END) within
    /// `bytes` and give at most `limit` bytes. cfitsio 4.2 takes Z_BUF_ERROR for "output
    /// buffer full" and reallocates forever when the input runs out first (a truncated
    /// stream hangs the reader, found by the fuzzers). The output goes to a scratch buffer
    /// of at most 64 kB, so this allocates nothing large.
    static func gzipTileProblem(_ bytes: [UInt8], limit: Int) -> String? {
        var stream = z_stream()
        // 15 + 32: a 32 kB window, gzip or zlib header detected.
        guard inflateInit2_(&stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            return "zlib could not start inflating"
        }
        defer { inflateEnd(&stream) }
        var scratch = [UInt8](repeating: 0, count: min(max(limit, 0) + 1, 1 << 16))
        var total = 0
        return bytes.withUnsafeBufferPointer { input in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
            stream.avail_in = UInt32(input.count)
            while true {
                let result = scratch.withUnsafeMutableBufferPointer { output -> Int32 in
                    stream.next_out = output.baseAddress
                    stream.avail_out = UInt32(output.count)
                    let result = inflate(&stream, Z_NO_FLUSH)
                    total += output.count - Int(stream.avail_out)
                    return result
                }
                if total > limit { return "inflates to more than \(limit) bytes (\(limit / 8) pixels of at most 8 bytes)" }
                switch result {
                case Z_OK: continue
                case Z_STREAM_END: return nil
                case Z_BUF_ERROR: return "ends before its compressed stream does (\(bytes.count) bytes)"
                default:
                    let message = stream.msg.map { String(cString: $0) } ?? "status \(result)"
                    return "is not a valid gzip stream (zlib: \(message))"
                }
            }
        }
    }
}

/// The keywords of one HDU as raw text, read as checked integers, and the
/// `.invalidKeyword` errors naming them.
struct HeaderKeys {
    let path: String
    let hdu: Int
    /// The value as written (quotes removed), nil when the keyword is absent.
    let raw: (String) -> String?

    /// An integer value in `range`; `default` when absent (absent and no default: error).
    func integer(_ keyword: String, default fallback: Int? = nil, range: ClosedRange<Int>,
                 expected: String? = nil) throws -> Int {
        let text = raw(keyword)
        if text == nil, let fallback { return fallback }
        guard let text, let value = Int(text), range.contains(value) else {
            let bounds = range.upperBound == Int.max ? "\(range.lowerBound) or more" : "\(range.lowerBound)...\(range.upperBound)"
            throw invalid(keyword, text ?? "(missing)", expected: expected ?? "an integer \(bounds)")
        }
        return value
    }

    /// An integer value from `allowed`.
    func integer(_ keyword: String, in allowed: Set<Int>, expected: String) throws -> Int {
        let text = raw(keyword)
        guard let text, let value = Int(text), allowed.contains(value) else {
            throw invalid(keyword, text ?? "(missing)", expected: expected)
        }
        return value
    }

    func invalid(_ keyword: String, _ value: String, expected: String) -> FITSError {
        .invalidKeyword(path: path, hdu: hdu, keyword: keyword, value: value, expected: expected)
    }
}

/// The sum of two non-negative integers, nil when it overflows `Int`.
private func sum(_ a: Int, _ b: Int) -> Int? {
    let (result, overflow) = a.addingReportingOverflow(b)
    return overflow ? nil : result
}

/// The product of non-negative integers, nil when it overflows `Int`.
private func product(_ values: [Int]) -> Int? {
    var result = 1
    for value in values {
        let (next, overflow) = result.multipliedReportingOverflow(by: value)
        if overflow { return nil }
        result = next
    }
    return result
}

/// cfitsio's raw read at the current byte position (declared in fitsio2.h, which the
/// CFITSIO module map leaves out); `ffmbyt` sets the position.
@_silgen_name("ffgbyt")
private func ffgbyt(_ file: UnsafeMutablePointer<fitsfile>?, _ count: Int64, _ buffer: UnsafeMutableRawPointer?,
                    _ status: UnsafeMutablePointer<Int32>?) -> Int32
