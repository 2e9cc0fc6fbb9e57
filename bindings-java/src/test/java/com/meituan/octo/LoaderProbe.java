package com.meituan.octo;

/** Run in a child JVM by {@link NativeLibraryTest}: loads the natives, uses them, prints where they came from. */
public final class LoaderProbe {
    private LoaderProbe() {}

    public static void main(String[] args) {
        String version = NativeLibrary.version();
        try (OctoEngine e = OctoEngine.builder().shards(1).pinShards(false).build()) {
            System.out.println(NativeLibrary.source() + " " + version + " shards=" + e.shards());
        }
    }
}
