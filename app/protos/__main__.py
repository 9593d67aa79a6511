"""`python -m app.protos`: generate the gRPC modules into the package (make protos, Docker build)."""
from app.protos import build_in_package

print(f"generated ACAP Runtime gRPC modules in {build_in_package()}")
