"""pyrunc-bundle: from an image to a running container (see bundles/README.md).

Images are imported into a store (an OCI image layout plus one unpacked directory per layer),
containers are bundles whose root is an overlay of those layers with a private upper
directory, and pyrunc (or runc) runs them.
"""
