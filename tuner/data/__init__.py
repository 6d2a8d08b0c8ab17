"""The data: an image folder decoded on every core (images, decoding), cleaned, deduplicated, balanced and split
(prepare), cached as dataset.npz + manifest.json (cache); the built-in sample written from its package (sample)."""
