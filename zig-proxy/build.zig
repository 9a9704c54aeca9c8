const std = @import("std");

pub fn build(b: *std.Build) void {
    // Static x86-64 Linux on the baseline CPU unless told otherwise: the
    // binary ships alone in a scratch image, and no proxy of the lab may
    // gain from instructions the others do not use. The musl ABI links no
    // libc here (the code calls the kernel through std.os.linux), so the
    // binary is static by construction.
    const target = b.standardTargetOptions(.{ .default_target = .{
        .cpu_arch = .x86_64,
        .os_tag = .linux,
        .abi = .musl,
        .cpu_model = .baseline,
    } });
    const optimize = b.standardOptimizeOption(.{});
    const version = b.option([]const u8, "version", "version printed in the start-up line") orelse "dev";

    const options = b.addOptions();
    options.addOption([]const u8, "version", version);

    const mod = b.createModule(.{
        .root_source_file = b.path("src/main.zig"),
        .target = target,
        .optimize = optimize,
        // The image ships the binary alone; symbols only add weight there.
        .strip = optimize != .Debug,
    });
    mod.addOptions("build_options", options);

    const exe = b.addExecutable(.{ .name = "zig-proxy", .root_module = mod });
    b.installArtifact(exe);

    const test_step = b.step("test", "Run the unit tests");
    const tests = b.addTest(.{ .root_module = mod });
    test_step.dependOn(&b.addRunArtifact(tests).step);

    // Pinned to Debug whatever -Doptimize says: only with safety checks on
    // does a read past the input stop the run instead of passing unseen.
    const fuzz = b.addTest(.{ .root_module = b.createModule(.{
        .root_source_file = b.path("src/http_fuzz_test.zig"),
        .target = target,
        .optimize = .Debug,
    }) });
    test_step.dependOn(&b.addRunArtifact(fuzz).step);
}
