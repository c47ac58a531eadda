package keys

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/tink-crypto/tink-go-awskms/v3/integration/awskms"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// kmsTimeout bounds one KMS call: the Tink AEAD interface carries no
// context, and a KMS that accepts and never answers must not hang a request.
const kmsTimeout = 15 * time.Second

// AWSKMS opens AWS KMS keys with the AWS SDK v2. Its KMS calls go through
// HTTP (the egress gate's KMS client, so they reach only the region's KMS
// endpoint); credentials come from the default AWS chain.
type AWSKMS struct {
	HTTP     *http.Client
	Endpoint string // FERRY_KMS_ENDPOINT; empty: the region's AWS endpoint

	mu      sync.Mutex
	clients map[string]*kms.Client // by region
}

var _ KMS = (*AWSKMS)(nil)

// AEAD returns the KMS key at uri as an AEAD.
func (k *AWSKMS) AEAD(ctx context.Context, uri string) (tink.AEAD, error) {
	region, err := KMSRegion(uri)
	if err != nil {
		return nil, err
	}
	client, err := k.client(ctx, region)
	if err != nil {
		return nil, err
	}
	c, err := awskms.NewClientWithOptions(ctx, "aws-kms://", awskms.WithKMS(client))
	if err != nil {
		return nil, fmt.Errorf("AWS KMS client: %w", err)
	}
	a, err := c.GetAEAD(uri)
	if err != nil {
		return nil, fmt.Errorf("AWS KMS key: %w", err)
	}
	wc, ok := a.(tink.AEADWithContext)
	if !ok {
		return nil, fmt.Errorf("AWS KMS key: AEAD takes no context")
	}
	return timedAEAD{wc}, nil
}

func (k *AWSKMS) client(ctx context.Context, region string) (*kms.Client, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if c, ok := k.clients[region]; ok {
		return c, nil
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	c := kms.NewFromConfig(cfg, func(o *kms.Options) {
		if k.HTTP != nil {
			o.HTTPClient = k.HTTP
		}
		if k.Endpoint != "" {
			o.BaseEndpoint = aws.String(k.Endpoint)
		}
	})
	if k.clients == nil {
		k.clients = map[string]*kms.Client{}
	}
	k.clients[region] = c
	return c, nil
}

// timedAEAD gives every KMS call a deadline.
type timedAEAD struct{ a tink.AEADWithContext }

func (t timedAEAD) Encrypt(plaintext, ad []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), kmsTimeout)
	defer cancel()
	return t.a.EncryptWithContext(ctx, plaintext, ad)
}

func (t timedAEAD) Decrypt(ciphertext, ad []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), kmsTimeout)
	defer cancel()
	return t.a.DecryptWithContext(ctx, ciphertext, ad)
}
